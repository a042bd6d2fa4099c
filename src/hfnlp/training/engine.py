"""The task-independent half of a run: the run folder, ``TrainingArguments`` from a recipe, and ``fit``.

Tasks (:mod:`hfnlp.tasks`) build data, processor and model, then hand them to :func:`fit`; everything
that Trainer, callbacks and accelerate already do (checkpoints, resume, best model, early stopping,
mixed precision, multi-GPU) is configured here, not re-implemented.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from accelerate.utils import broadcast_object_list
from datasets import DatasetDict
from safetensors import SafetensorError
from transformers import EarlyStoppingCallback, PreTrainedModel, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import get_last_checkpoint

from hfnlp.errors import HfnlpError
from hfnlp.recipe import Recipe
from hfnlp.training.atomic import atomic_path, staging_path, write_text
from hfnlp.training.optim import (
    LazyAdamW,
    coalesce_sparse_gradients,
    scale_learning_rates,
    trains_with_lazy_adamw,
    uses_sparse_gradients,
)
from hfnlp.training.run_folder import RECIPE, RunFolder, last_complete_checkpoint
from hfnlp.training.threads import configure_threads
from hfnlp.training.trainer import HfnlpTrainer

logger = logging.getLogger(__name__)


class EpochTimer(TrainerCallback):
    """Wall time of each training epoch, evaluation excluded (``seconds_per_epoch`` in ``metrics.json``)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        self.durations.append(time.perf_counter() - self._start)


def fit(
    recipe: Recipe,
    run: RunFolder,
    *,
    args: TrainingArguments,
    model: PreTrainedModel,
    splits: DatasetDict,
    resume_from: str | None,
    data_collator: Callable | None = None,
    processing_class: Any = None,
    compute_metrics: Callable | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    trainer_class: type[Trainer] = HfnlpTrainer,
    **trainer_kwargs: Any,
) -> Trainer:
    """Train with ``transformers.Trainer`` on ``splits['train']``, evaluating on ``splits['validation']``."""
    all_callbacks = [*callbacks, EpochTimer()]
    if recipe.training.early_stopping_patience:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe.training.early_stopping_patience))
    train_dataset = splits["train"]
    for callback in all_callbacks:  # debug subsets (--limit-train, --overfit-batch) choose what to train on
        if hasattr(callback, "select_train_dataset"):
            train_dataset = callback.select_train_dataset(train_dataset)
        # The live status counts the confusion matrix from what the metrics see (predictions and labels).
        if hasattr(callback, "wrap_compute_metrics") and compute_metrics is not None:
            compute_metrics = callback.wrap_compute_metrics(compute_metrics)
    if (
        trains_with_lazy_adamw(args.optim, uses_sparse_gradients(model))
        and "optimizer_cls_and_kwargs" not in trainer_kwargs
    ):
        logger.info("the model has sparse embedding gradients: training with LazyAdamW in place of %s", args.optim)
        adam = {"lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}
        training = recipe.training
        adam.update(sparse_rule=training.sparse_optimizer, sparse_lr_ratio=training.sparse_rate / args.learning_rate)
        trainer_kwargs["optimizer_cls_and_kwargs"] = (LazyAdamW, adam)
    coalescing = coalesce_sparse_gradients(model)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=splits["validation"] if args.eval_strategy != "no" else None,
        data_collator=data_collator,
        processing_class=processing_class,
        compute_metrics=compute_metrics,
        callbacks=all_callbacks,
        **trainer_kwargs,
    )
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except Exception as error:
        raise_if_checkpoint_cut_short(run, error)
        raise
    finally:
        for handle in coalescing:
            handle.remove()
    return trainer


EVAL_SPLITS = ("validation", "test")


def fixed_subset(dataset: Any, size: int, seed: int) -> Any:
    """``size`` rows of ``dataset`` drawn at random by ``seed`` (the same rows on every process), in their order."""
    rows = sorted(random.Random(seed).sample(range(len(dataset)), size))
    if hasattr(dataset, "select"):
        return dataset.select(rows)
    from torch.utils.data import Subset

    return Subset(dataset, rows)


def limit_eval_splits(splits: Any, rows: int, seed: int) -> dict[str, dict[str, int]]:
    """Cut the validation and test splits of ``splits`` (a mutable mapping) to at most ``rows`` random rows each;
    return ``{split: {"rows": kept, "of": before}}`` for each split there is."""
    kept = {}
    for name in EVAL_SPLITS:
        if name in splits:
            available = len(splits[name])
            splits[name] = fixed_subset(splits[name], min(rows, available), seed)
            kept[name] = {"rows": len(splits[name]), "of": available}
    return kept


def raise_if_checkpoint_cut_short(run: RunFolder, error: Exception) -> None:
    """After training failed: if it failed while writing a checkpoint (disk full, quota, file size limit), raise an
    :class:`HfnlpError` that says so and names the checkpoint that is intact; otherwise return.

    The evidence is on disk, not in the exception: writers fail with anything from ``OSError(ENOSPC)`` to
    safetensors' and torch's own errors, but a checkpoint folder without its state file was cut short.
    """
    newest = get_last_checkpoint(str(run.path))  # checkpoint-N folders only, never *.incomplete
    if newest is None or (Path(newest) / TRAINER_STATE_NAME).exists():
        return
    intact = last_complete_checkpoint(run.path)  # also moves the cut-short folder aside
    raise HfnlpError(
        _write_failure(f"finish writing {Path(newest).name} in {run.path}", run, error)
        + (f" {Path(intact).name} is intact: " if intact else " No earlier checkpoint exists: ")
        + "make room, then run the same command with --resume."
    ) from error


def _write_failure(what: str, run: RunFolder, error: BaseException) -> str:
    # The free space is what a full disk or quota shows; the error text names a file size limit or anything else.
    free_mib = shutil.disk_usage(run.path).free / 2**20
    return f"could not {what} ({type(error).__name__}: {error}); {free_mib:,.0f} MiB free there."


def save_final_model(
    trainer: Trainer,
    run: RunFolder,
    complete: Callable[[PreTrainedModel, Path], None],
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Save the (best) model as a shareable folder: weights and config (every process takes part, as sharded
    training needs), then on the main process ``complete(model, folder)`` (the task's processors and code), the
    resolved recipe and ``finish(folder)`` (the model card).

    The folder is built in a temporary sibling of ``model/`` that then replaces it in one step
    (:func:`~hfnlp.training.atomic.atomic_path`): a run killed at any moment leaves the previous complete model
    folder or the new one. Trainer also writes ``training_args.bin``, a pickle: it stays out of a folder meant for
    others to load.
    """
    owner = broadcast_object_list([os.getpid()])[0]  # the staging folder is named after the main process
    try:
        if not trainer.is_world_process_zero():
            trainer.save_model(str(staging_path(run.model_dir, owner)))  # joins the gathers of sharded weights
            return run.model_dir
        with atomic_path(run.model_dir, owner) as folder:
            trainer.save_model(str(folder))
            (folder / "training_args.bin").unlink(missing_ok=True)
            complete(trainer.accelerator.unwrap_model(trainer.model), folder)
            shutil.copy(run.recipe_path, folder / RECIPE)
            if finish is not None:
                finish(folder)
    except (OSError, RuntimeError, SafetensorError) as error:  # what file writers raise on a full disk
        raise HfnlpError(
            _write_failure(f"write the final model folder {run.model_dir}", run, error)
            + " The checkpoints are intact: make room, then run the same command with --resume (no training step"
            " is repeated)."
        ) from error
    return run.model_dir


class LearningRateOnResume(TrainerCallback):
    """Apply a learning rate that a resumed recipe changed (see :mod:`hfnlp.training.resume`).

    Trainer restores the optimizer's and the schedule's state from the checkpoint, learning rates included, so
    without this a new ``training.learning_rate`` would be recorded but never used. Every parameter group and the
    schedule's base rates are scaled by new / saved, which keeps the groups' ratios (a head's multiplier).
    """

    def __init__(self, saved: float, new: float) -> None:
        self.factor = new / saved

    def on_train_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        scale_learning_rates(kwargs["optimizer"], kwargs.get("lr_scheduler"), self.factor)


def configure_cpu_threads(recipe: Recipe, args: TrainingArguments) -> dict[str, Any] | None:
    """On a CPU run, fit torch's threads to the machine (:func:`~hfnlp.training.threads.configure_threads`) and
    return the record of how; ``None`` when the run trains on a GPU, where the CPU threads only feed it."""
    if args.device.type != "cpu":
        return None
    # Under `accelerate launch` on CPU, accelerate sets OMP_NUM_THREADS per process, which configure_threads keeps.
    return configure_threads(recipe.training.num_threads)


def environment_summary(threads: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Versions and hardware, recorded with the metrics so a result can be reproduced and compared; ``threads``:
    the record of :func:`configure_cpu_threads` (how many threads torch computed with, and why)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "num_threads": torch.get_num_threads(),
        **(threads or {}),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_metrics(
    run: RunFolder,
    trainer: Trainer,
    test_metrics: dict[str, float],
    started: float,
    extra: dict[str, Any],
    threads: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``metrics.json``: test metrics, best validation score, epochs, throughput, wall time, environment
    (with ``threads``, see :func:`environment_summary`), and the task's ``extra`` entries (skipped rows, validation
    scores, ...); :func:`record_folder_sizes` adds the sizes once the final model folder is written."""
    state = trainer.state
    train_log = next((entry for entry in reversed(state.log_history) if "train_runtime" in entry), {})
    summary = {
        "test": {key.removeprefix("test_"): value for key, value in test_metrics.items()},
        "best_validation_metric": state.best_metric,
        "best_checkpoint": state.best_model_checkpoint,
        "mixed_precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "no",
        "epochs": state.epoch,
        "global_step": state.global_step,
        "train_runtime_s": train_log.get("train_runtime"),
        "train_samples_per_second": train_log.get("train_samples_per_second"),
        "seconds_per_epoch": _seconds_per_epoch(trainer),
        "wall_time_s": round(time.time() - started, 2),
        "peak_memory_mb": peak_memory_mb(),
        "environment": environment_summary(threads),
        **extra,
    }
    if trainer.is_world_process_zero():
        write_text(run.metrics_path, json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def record_folder_sizes(run: RunFolder, summary: dict[str, Any]) -> dict[str, Any]:
    """Add ``model_folder_mb`` and ``run_folder_mb`` (the sizes of their files in MiB, to 0.1) to ``summary`` and
    rewrite ``metrics.json`` with it: called once the final model folder is in place, after the last checkpoint."""
    summary.update(model_folder_mb=folder_mb(run.model_dir), run_folder_mb=folder_mb(run.path))
    write_text(run.metrics_path, json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


def folder_mb(path: Path) -> float:
    """The sizes of the files under ``path`` (links not followed), in MiB rounded to 0.1."""
    total = sum(item.lstat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())
    return round(total / 2**20, 1)


def _seconds_per_epoch(trainer: Trainer) -> float | None:
    timer = next(c for c in trainer.callback_handler.callbacks if isinstance(c, EpochTimer))
    return round(sum(timer.durations) / len(timer.durations), 2) if timer.durations else None


def peak_memory_mb() -> float:
    """Peak resident memory of this process (CUDA: peak allocated on the device), in MiB."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
