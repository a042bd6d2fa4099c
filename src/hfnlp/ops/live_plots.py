"""Training curves redrawn while training runs, so ``RUN_DIR/curves.png`` is never older than the last evaluation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfnlp.training.reports import plot_training_curves
from hfnlp.training.run_folder import CURVES, RunFolder


class LivePlotsCallback(TrainerCallback):
    """Redraw the run's ``curves.png`` (loss, validation metrics, learning rate) after each evaluation — after each
    epoch when nothing is evaluated — at most every ``min_interval_s`` seconds, the first time ``min_interval_s`` after
    training starts: a run of a few seconds draws nothing while it trains (a drawing takes 0.1 s, measured 3% of a
    5-second THUCNews bag model's training). Tasks draw the final one at the end."""

    def __init__(self, run_dir: str | Path, min_interval_s: float = 10.0) -> None:
        self.path = RunFolder(run_dir).file(CURVES)
        self.min_interval_s = min_interval_s
        self._drawn = float("-inf")

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """When training starts (or resumes)."""
        self._drawn = time.monotonic()

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """After an evaluation."""
        self._draw(state)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """After an epoch, when runs are not evaluated."""
        if args.eval_strategy == "no":
            self._draw(state)

    def _draw(self, state: TrainerState) -> None:
        now = time.monotonic()
        if state.is_world_process_zero and now - self._drawn >= self.min_interval_s:
            plot_training_curves(state.log_history, self.path)
            self._drawn = now
