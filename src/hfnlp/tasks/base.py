"""The task contract: everything the rest of hfnlp needs to know about a task, in one class.

A task module subclasses :class:`Task`, fills in what is really its own (data, processor, model, what to train
on, how to score, what to report) and registers an instance with :func:`hfnlp.tasks.register_task`. The run
sequence itself (:func:`hfnlp.training.run.run_task`), recipes, model cards, model folders, export and the
commands are generic: they ask the task, never test its name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from timm.models import get_pretrained_cfg
from transformers import PreTrainedModel

from hfnlp.data.reading import SPLIT_ALIASES
from hfnlp.errors import HfnlpError, RecipeError
from hfnlp.models import ModelFamily, families_loaded_by
from hfnlp.recipe import Recipe
from hfnlp.training.optim import trains_with_lazy_adamw
from hfnlp.training.reports import (
    SUMMARY_METRICS,
    classification_metrics,
    classification_scores,
    write_classification_report,
)
from hfnlp.training.run import Evaluation, FitPlan, RunOptions, TaskData, run_task
from hfnlp.training.run_folder import CLASSIFICATION_REPORT, RunFolder


class Task:
    """A task: its recipe sections, the model families it accepts, its run hooks and how it is shared.

    Class attributes:
        name: The recipe's ``task:`` value, e.g. ``"text-classification"``.
        pipeline_tag: The Hub pipeline tag of its models (the card's ``pipeline_tag``).
        auto_class: The transformers Auto class its models register with: the task accepts every hfnlp model
            family registered with it, so a new family needs no edit here.
        data_config: The dataclass of the recipe's ``data`` section.
        tokenizer_config: The dataclass of the recipe's ``tokenizer`` section, or ``None`` (no such section).
        set_by_run: Model config keys the run derives from the data or tokenizer; a recipe may not set them.
    """

    name: str
    pipeline_tag: str
    auto_class: str
    data_config: type
    tokenizer_config: type | None = None
    set_by_run: tuple[str, ...] = ("num_labels", "id2label", "label2id")

    # ----- recipes ---------------------------------------------------------------------------------------------

    def model_families(self) -> dict[str, ModelFamily]:
        """The model families this task trains, by recipe ``model.type``."""
        return families_loaded_by(self.auto_class)

    def check_recipe(self, recipe: Recipe) -> None:
        """Refuse, before any work, what the task cannot run; the default refuses keys set by the run."""
        clashing = [key for key in self.set_by_run if key in recipe.model]
        if clashing:
            source = "the data and tokenizer" if self.tokenizer_config else "the data"
            raise RecipeError(f"model.{clashing[0]} is set from {source}; remove it from the recipe")
        training = recipe.training
        sparse_embeddings = bool(recipe.model.get("sparse_embeddings"))
        lazy = trains_with_lazy_adamw(training.optim, sparse_embeddings)
        for key, given in (
            ("sparse_optimizer", training.sparse_optimizer != "adamw"),
            ("sparse_learning_rate", training.sparse_learning_rate is not None),
        ):
            if given and not lazy:
                raise RecipeError(
                    f"training.{key}: applies to a model with model.sparse_embeddings: true trained with an AdamW "
                    f"optim (LazyAdamW); this recipe has neither or trains with {training.optim}: remove it"
                )
        if sparse_embeddings and not lazy and training.weight_decay:
            raise RecipeError(
                f"training.weight_decay: {training.weight_decay} cannot go with training.optim {training.optim} "
                "and model.sparse_embeddings (torch's optimizer refuses it for sparse gradients); set it to 0, or "
                "use adamw_torch (LazyAdamW decays only the rows a batch uses)"
            )

    def metric_names(self, recipe: Recipe) -> set[str] | None:
        """The metrics an evaluation reports, without Trainer's ``eval_`` prefix (``loss`` included): what
        ``training.metric_for_best_model`` may name, checked when the recipe loads. Default ``None``: the task
        does not say, and the choice is left unchecked."""
        return None

    # ----- the run (hooks of hfnlp.training.run.run_task) ------------------------------------------------------

    def run(self, recipe: Recipe, options: RunOptions) -> dict[str, Any]:
        """Train, evaluate on the test split, write reports and save the final model; return ``metrics.json``."""
        return run_task(self, recipe, options)

    def load_data(self, recipe: Recipe) -> TaskData:
        """Read and validate the recipe's data into train / validation / test splits."""
        raise NotImplementedError

    def prepare_processor(self, recipe: Recipe, run: RunFolder, data: TaskData) -> Any:
        """The run's tokenizer and/or image processor: trained once and saved in ``run.tokenizer_dir``, reused
        from there (resume, and the other processes under ``accelerate launch``). Default: none."""
        return None

    def load_processor(self, recipe: Recipe, run: RunFolder) -> Any:
        """The processor a finished run saved (for exporting a checkpoint). Default: none."""
        return None

    def build_model(self, recipe: Recipe, data: TaskData, processor: Any) -> PreTrainedModel:
        """A new model of the recipe's family, sized for the data and the processor."""
        raise NotImplementedError

    def plan_fit(
        self, recipe: Recipe, run: RunFolder, data: TaskData, processor: Any, model: PreTrainedModel
    ) -> FitPlan:
        """What ``Trainer`` trains on and how (splits ready for the model, collator, metrics, Trainer class)."""
        raise NotImplementedError

    def evaluate(self, trainer: Any, plan: FitPlan, data: TaskData) -> Evaluation:
        """Final scores (on every process: predictions are gathered); the test split's under ``test_*`` keys."""
        test = trainer.predict(plan.splits["test"], metric_key_prefix="test")
        return Evaluation(test_metrics=test.metrics, predictions=test)

    def write_reports(self, recipe: Recipe, run: RunFolder, evaluation: Evaluation, data: TaskData) -> None:
        """Task reports in the run folder (main process only). Default: none."""

    def card_examples(self, run: RunFolder, data: TaskData) -> list[str]:
        """A few real inputs from the test split for the model card's usage snippet (main process only)."""
        raise NotImplementedError

    # ----- sharing ---------------------------------------------------------------------------------------------

    def complete_model_folder(self, model: PreTrainedModel, processor: Any, folder: Path) -> None:
        """Add what ``model.save_pretrained`` does not write: tokenizer, image processor, pipeline code."""
        if processor is not None:
            processor.save_pretrained(folder)

    def card_context(self, run_dir: Path, model_dir: Path, final: bool) -> dict[str, Any]:
        """Values the task's card template needs beyond the generic ones."""
        return {}

    def card_texts(self, run_dir: Path, examples: list[str]) -> list[str]:
        """Texts that show the model's language (for the card's ``language``); default: the examples."""
        return examples

    def base_model(self, config: dict[str, Any]) -> str | None:
        """The Hub id of the pretrained model the saved model (``config``: its ``config.json``) was fine-tuned from,
        for the card's ``base_model``; ``None`` when it was trained from scratch (the default)."""
        return None

    def given_splits(self, data: Any) -> set[str] | None:
        """The splits the recipe's ``data`` section reads from its source (train first; the others it lacks are
        carved from train); ``None`` when that is known only once the files are read. Default: a built-in set
        gives train, a Hub set its own splits, a section of split files the ones it names."""
        if getattr(data, "hub", None):
            return hub_splits(data.hub, data.hub_config)
        if getattr(data, "builtin", None):
            return {"train"}
        split_files = getattr(data, "split_files", None)
        return set(split_files()) if split_files else None

    def export_onnx(self, model_dir: Path) -> Any:
        """Write ``onnx/model.onnx`` into a complete model folder; tasks without an ONNX export refuse."""
        raise HfnlpError(f"ONNX export is not available for {self.name} models")


def hub_splits(name: str, config_name: str | None) -> set[str] | None:
    """The splits of a Hub data set (or a local folder ``datasets`` reads) under hfnlp's names (``dev`` →
    ``validation``), from the local cache when offline; ``None`` when ``datasets`` cannot tell."""
    try:
        names = datasets.get_dataset_split_names(name, config_name)
    except Exception:  # noqa: BLE001 — offline without a cache, a removed set: the card then says less
        return None
    return {SPLIT_ALIASES[split] for split in names if split in SPLIT_ALIASES}


def timm_base_model(architecture: str, pretrained: bool, weights: str | None) -> str | None:
    """The Hub id of timm's pretrained weights for ``architecture`` (e.g. ``timm/tf_efficientnet_lite0.in1k``) when
    a model started from them — not from a local ``weights`` file, nor from scratch."""
    if not pretrained or weights:
        return None
    pretrained_cfg = get_pretrained_cfg(architecture)
    return getattr(pretrained_cfg, "hf_hub_id", None)


class ClassificationTask(Task):
    """A task whose model gives one of ``data.label_names`` per input: accuracy / macro-F1 metrics during training,
    and a classification report with a confusion matrix at the end."""

    def metric_names(self, recipe: Recipe) -> set[str]:
        """What :meth:`compute_metrics` returns, and the evaluation loss."""
        return {*SUMMARY_METRICS, "loss"}

    def compute_metrics(self, data: TaskData) -> Any:
        """Trainer's ``compute_metrics`` over the data's label set."""
        return classification_metrics(len(data.label_names))

    def write_reports(self, recipe: Recipe, run: RunFolder, evaluation: Evaluation, data: TaskData) -> None:
        """``classification_report.{json,txt}`` and ``confusion_matrix.{csv,png}`` for the test split."""
        test = evaluation.predictions
        predictions = np.argmax(test.predictions, axis=-1)
        scores = classification_scores(predictions, test.label_ids, data.label_names)
        write_classification_report(run.path, scores, data.label_names)

    def card_context(self, run_dir: Path, model_dir: Path, final: bool) -> dict[str, Any]:
        """The per-class report of the final model (a checkpoint has none)."""
        report_path = RunFolder(run_dir).file(CLASSIFICATION_REPORT)
        report = json.loads(report_path.read_text(encoding="utf-8")) if final and report_path.is_file() else None
        return {"report": report}
