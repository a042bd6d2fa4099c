"""The run template: prepare → data → processor → model → fit → evaluate → report → save, written once.

Every task runs through :func:`run_task`, which owns the sequence, the process guards under ``accelerate
launch`` (the main process prepares the folder, the data and the processor first, the others then reuse what it
wrote; run files are written by one process only, which holds the run folder's lock for the whole run), the run
folder, ``metrics.json`` and the final model folder (written aside, then put in place in one step).
A task supplies small hooks (:class:`TaskHooks`): what is really its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from datasets import DatasetDict
from transformers import PreTrainedModel, Trainer, TrainerCallback, set_seed

from hfnlp.models import FAMILIES
from hfnlp.recipe import Recipe
from hfnlp.training.arguments import build_training_arguments
from hfnlp.training.atomic import write_text
from hfnlp.training.engine import (
    LearningRateOnResume,
    configure_cpu_threads,
    fit,
    limit_eval_splits,
    record_folder_sizes,
    save_final_model,
    write_metrics,
)
from hfnlp.training.guards import DivergenceGuard
from hfnlp.training.reports import plot_training_curves
from hfnlp.training.run_folder import CURVES, RunFolder
from hfnlp.training.trainer import HfnlpTrainer

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Options of a run that are not part of the recipe."""

    resume: bool = False
    callbacks: list[TrainerCallback] = field(default_factory=list)
    #: Called on the main process with the new model folder once it holds the model, its processors and the recipe
    #: (and ``metrics.json`` and the reports are written), before it replaces ``model/``: what it adds (the model
    #: card) is in place together with the model, never after it.
    finish_model_folder: Callable[[Path], None] | None = None
    #: ``--limit-eval``: the validation and test splits are cut to this many rows each (a debug run).
    limit_eval: int | None = None


@dataclass
class TaskData:
    """A task's validated data: raw splits, the label set (classification), and counts for ``metrics.json``."""

    splits: DatasetDict
    label_names: list[str] | None = None
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitPlan:
    """What ``Trainer`` trains on and how: splits ready for the model and the Trainer's parts."""

    splits: dict[str, Any]
    data_collator: Callable | None = None
    processing_class: Any = None
    compute_metrics: Callable | None = None
    trainer_class: type[Trainer] = HfnlpTrainer
    callbacks: list[TrainerCallback] = field(default_factory=list)
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    """Final scores: the test split's metrics (``test_*`` keys), extra ``metrics.json`` entries, raw outputs."""

    test_metrics: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)
    predictions: Any = None


class TaskHooks(Protocol):
    """What :func:`run_task` asks of a task (implemented by :class:`hfnlp.tasks.base.Task`)."""

    def load_data(self, recipe: Recipe) -> TaskData: ...

    def prepare_processor(self, recipe: Recipe, run: RunFolder, data: TaskData) -> Any: ...

    def build_model(self, recipe: Recipe, data: TaskData, processor: Any) -> PreTrainedModel: ...

    def plan_fit(
        self, recipe: Recipe, run: RunFolder, data: TaskData, processor: Any, model: PreTrainedModel
    ) -> FitPlan: ...

    def evaluate(self, trainer: Trainer, plan: FitPlan, data: TaskData) -> Evaluation: ...

    def write_reports(self, recipe: Recipe, run: RunFolder, evaluation: Evaluation, data: TaskData) -> None: ...

    def card_examples(self, run: RunFolder, data: TaskData) -> list[str]: ...

    def complete_model_folder(self, model: PreTrainedModel, processor: Any, folder: Any) -> None: ...


def run_task(task: TaskHooks, recipe: Recipe, options: RunOptions) -> dict[str, Any]:
    """Run ``recipe`` with ``task``'s hooks; return the summary written to ``metrics.json``."""
    started = time.time()
    run = RunFolder(recipe.output_dir)
    args = build_training_arguments(recipe, run.path)  # also sets up the processes of an `accelerate launch`
    threads = configure_cpu_threads(recipe, args)  # before any work: data preparation computes with them too
    with ExitStack() as ownership:
        # Under `accelerate launch` the main process locks the folder, prepares it, reads the data, trains the
        # tokenizer and caches what the task caches; the others wait, then read what it wrote.
        with args.main_process_first(local=False, desc="preparing the run"):
            if args.process_index == 0:
                ownership.enter_context(run.locked(processes=args.world_size))
            resume_from = run.prepare(recipe, resume=options.resume, main_process=args.process_index == 0)
            set_seed(recipe.seed)
            data = task.load_data(recipe)
            if options.limit_eval is not None:
                kept = limit_eval_splits(data.splits, options.limit_eval, recipe.seed)
                data.counts["limit_eval"] = kept  # metrics.json says what the scores were measured on
                logger.info(
                    "--limit-eval %d: evaluating on %s",
                    options.limit_eval,
                    ", ".join(f"{c['rows']} of {c['of']} {name} rows" for name, c in kept.items()),
                )
            processor = task.prepare_processor(recipe, run, data)
            model = task.build_model(recipe, data, processor)
            plan = task.plan_fit(recipe, run, data, processor, model)
        trainer = fit(
            recipe,
            run,
            args=args,
            model=model,
            splits=plan.splits,
            resume_from=resume_from,
            data_collator=plan.data_collator,
            processing_class=plan.processing_class,
            compute_metrics=plan.compute_metrics,
            # The guard comes last: it must see every request for a checkpoint before Trainer writes one.
            callbacks=[*options.callbacks, *plan.callbacks, *_resume_callbacks(run, resume_from), DivergenceGuard(run)],
            trainer_class=plan.trainer_class,
            **plan.trainer_kwargs,
        )
        # The model as its final folder stores it (fastText's int8 tables), so that the test scores are the saved
        # model's; on every process, as every process evaluates and takes part in saving.
        FAMILIES[recipe.model["type"]].convert_for_folder(trainer.accelerator.unwrap_model(trainer.model), recipe.model)
        evaluation = task.evaluate(trainer, plan, data)  # on every process: predictions are gathered
        if trainer.is_world_process_zero():
            task.write_reports(recipe, run, evaluation, data)
            plot_training_curves(trainer.state.log_history, run.file(CURVES))
            write_text(run.card_examples_path, json.dumps(task.card_examples(run, data), ensure_ascii=False))
        # metrics.json before the model folder: the card written into it (options.finish_model_folder) reads it.
        summary = write_metrics(
            run, trainer, evaluation.test_metrics, started, extra={**data.counts, **evaluation.summary}, threads=threads
        )
        save_final_model(
            trainer,
            run,
            lambda model, folder: task.complete_model_folder(model, processor, folder),
            options.finish_model_folder,
        )
        if trainer.is_world_process_zero():
            record_folder_sizes(run, summary)
    return summary


def _resume_callbacks(run: RunFolder, resume_from: str | None) -> list[TrainerCallback]:
    """What a resume with changed settings needs besides the checkpoint: the new learning rate applied."""
    changed = run.resume_changes.get("training.learning_rate")
    return [LearningRateOnResume(*changed)] if resume_from is not None and changed else []
