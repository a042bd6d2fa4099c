"""The live status of a run, written by the training process for the dashboard, the sweep table and ``hfnlp control``.

``RUN_DIR/live_status.json`` holds the state (running / finished), the process id, progress and ETA, the current
learning rate (and the recipe's, which bounds live changes), throughput, Trainer's log history and, for
classification models, the confusion matrix of the latest evaluation. It is rewritten atomically, at most every
``min_interval_s`` (and at every evaluation and at the end), so readers in other processes always see a whole
document.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import EvalPrediction, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfnlp.training.run_folder import LIVE_STATUS, RunFolder


class LiveStatusCallback(TrainerCallback):
    """Write ``RUN_DIR/live_status.json`` during training (main process only)."""

    def __init__(self, run_dir: str | Path, min_interval_s: float = 1.0) -> None:
        self.path = RunFolder(run_dir).file(LIVE_STATUS)
        self.min_interval_s = min_interval_s
        self._written = 0.0
        self._started = 0.0
        self._start_step = 0
        self._batch = 0
        self._throughput: list[list[float]] = []
        self._last_log: tuple[int, float] | None = None
        self._confusion: ConfusionCounter | None = None
        self._confusion_matrix: dict[str, Any] | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Start the clocks and, for a classifier, count the confusion matrix during evaluation."""
        self._started = time.time()
        self._start_step = state.global_step
        self._batch = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        self._last_log = (state.global_step, self._started)
        self._confusion = ConfusionCounter.attach(kwargs["model"])
        self._write(args, state, kwargs, "running", force=True)

    def wrap_compute_metrics(self, compute_metrics: Callable[[EvalPrediction], dict]) -> Callable:
        """``compute_metrics`` that also counts the evaluation's confusion matrix (the training engine wraps the
        Trainer's with it): what the metrics see, whatever took the labels out of the model's inputs."""

        def compute(prediction: EvalPrediction) -> dict:
            if self._confusion is not None:
                self._confusion.count(prediction)
            return compute_metrics(prediction)

        return compute

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Progress, throttled."""
        self._write(args, state, kwargs, "running")

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Add a throughput point for the steps since the previous training log."""
        now = time.time()
        if "loss" in (kwargs.get("logs") or {}) and self._last_log is not None:
            step, then = self._last_log
            if state.global_step > step and now > then:
                self._throughput.append(
                    [state.global_step, round((state.global_step - step) * self._batch / (now - then), 2)]
                )
        self._last_log = (state.global_step, now)
        self._write(args, state, kwargs, "running")

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Take the evaluation's confusion matrix; evaluation time does not count as training throughput."""
        if self._confusion is not None:
            self._confusion_matrix = self._confusion.take(state)
        self._last_log = None
        self._write(args, state, kwargs, "running", force=True)

    def on_predict(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Predictions (e.g. on the test split) are not the validation confusion matrix."""
        if self._confusion is not None:
            self._confusion.reset()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Mark the run finished (testing and saving may still follow)."""
        self._write(args, state, kwargs, "finished", force=True)

    def _write(self, args: TrainingArguments, state: TrainerState, kwargs: dict[str, Any], phase: str, force=False):
        now = time.time()
        if not state.is_world_process_zero or (not force and now - self._written < self.min_interval_s):
            return
        self._written = now
        done = state.global_step - self._start_step
        rate = done / (now - self._started) if done > 0 and now > self._started else None
        scheduler = kwargs.get("lr_scheduler")
        status = {
            "run": self.path.parent.name,
            "state": phase,
            "pid": os.getpid(),
            "updated": now,
            "started": self._started,
            "global_step": state.global_step,
            "max_steps": state.max_steps,
            "epoch": state.epoch,
            "num_train_epochs": state.num_train_epochs,
            "learning_rate": scheduler.get_last_lr()[0] if scheduler is not None else None,
            "recipe_learning_rate": args.learning_rate,  # what live learning-rate changes are bounded by
            "samples_per_second": self._throughput[-1][1] if self._throughput else None,
            "eta_seconds": round((state.max_steps - state.global_step) / rate, 1) if rate else None,
            "metric_for_best_model": args.metric_for_best_model,
            "best_metric": state.best_metric,
            "best_global_step": state.best_global_step,
            "log_history": state.log_history,
            "throughput": self._throughput,
            "confusion_matrix": self._confusion_matrix,
        }
        partial = self.path.with_name(f".{self.path.name}.part")
        partial.write_text(json.dumps(status, default=float))
        os.replace(partial, self.path)


class ConfusionCounter:
    """The confusion matrix of the latest evaluation, from the predictions and labels Trainer hands its
    ``compute_metrics`` (gathered over processes). A forward hook cannot count it: under label smoothing or a
    ``compute_loss_func`` Trainer takes the labels out of the model's inputs."""

    def __init__(self, label_names: list[str]) -> None:
        self.label_names = label_names
        self.counts: np.ndarray | None = None

    @classmethod
    def attach(cls, model: torch.nn.Module) -> ConfusionCounter | None:
        """A counter for a model with labels (``config.id2label``), else ``None``."""
        id2label = getattr(getattr(model, "config", None), "id2label", None)
        if not id2label:
            return None
        return cls([str(id2label[i]) for i in range(len(id2label))])

    def count(self, prediction: EvalPrediction) -> None:
        """Count one evaluation's (true, predicted) pairs; outputs that are not one row of logits (or one predicted
        id) per example, such as a captioner's per-token logits, are never counted."""
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        labels = prediction.label_ids[0] if isinstance(prediction.label_ids, tuple) else prediction.label_ids
        logits, labels, size = np.asarray(logits), np.asarray(labels), len(self.label_names)
        if labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
            return
        if logits.ndim == 2 and logits.shape[1] == size:
            predicted = logits.argmax(-1)
        elif logits.ndim == 1:
            predicted = logits.astype(np.int64)
        else:
            return
        keep = (labels >= 0) & (labels < size) & (predicted >= 0) & (predicted < size)
        pairs = labels[keep].astype(np.int64) * size + predicted[keep]
        self.counts = np.bincount(pairs, minlength=size**2)

    def take(self, state: TrainerState) -> dict[str, Any] | None:
        """The matrix of the latest evaluation, rows = true labels; then forget it."""
        counts, self.counts = self.counts, None
        if counts is None:
            return None
        size = len(self.label_names)
        matrix = counts.reshape(size, size).tolist()
        return {"labels": self.label_names, "matrix": matrix, "step": state.global_step, "epoch": state.epoch}

    def reset(self) -> None:
        """Forget what was counted."""
        self.counts = None
