"""Debug subsets: ``--limit-train 1batch|0.5|N``, ``--limit-eval N`` and ``--overfit-batch``.

The tutorials' habit: first train on one batch, then on half of the data, then on all of it. ``--overfit-batch``
is the standard sanity check — train on one fixed batch for :data:`OVERFIT_STEPS` steps (no evaluation, no
checkpoints) and fail with a clear message unless the loss falls to at most ``1 - OVERFIT_MIN_DROP`` of where it
started. Debug runs write to ``<output_dir>-<mode>`` so that they never occupy the real run's folder.

The subset is chosen by :meth:`DebugSubsetCallback.select_train_dataset`, which
:func:`hfnlp.training.engine.fit` calls on the training split before building the Trainer (a callback cannot
replace Trainer's data set). ``--limit-eval N`` cuts the validation and test splits to N rows each as soon as the
run has read them (:func:`hfnlp.training.engine.limit_eval_splits`, called by the run template), so that neither is
prepared whole; ``metrics.json`` records how many rows each kept.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import SaveStrategy

from hfnlp.errors import HfnlpError
from hfnlp.recipe import Recipe
from hfnlp.training.engine import fixed_subset

OVERFIT_STEPS = 100
OVERFIT_MIN_DROP = 0.5


@dataclass(frozen=True)
class TrainLimit:
    """How much of the training split to use: ``batches`` batches, a ``fraction`` of it, or ``examples`` rows."""

    batches: int | None = None
    fraction: float | None = None
    examples: int | None = None

    @classmethod
    def parse(cls, text: str) -> TrainLimit:
        """``"1batch"``/``"4batches"``, a fraction in (0, 1] like ``"0.5"``, or a row count like ``"2000"``."""
        text = text.strip().lower()
        problem = f"--limit-train {text!r}: use 1batch (or Nbatches), a fraction in (0, 1], or a number of rows"
        if match := re.fullmatch(r"(\d+)\s*batch(es)?", text):
            limit = cls(batches=int(match.group(1)))
        elif text.isdigit():
            limit = cls(examples=int(text))
        else:
            try:
                limit = cls(fraction=float(text))
            except ValueError:
                raise HfnlpError(problem) from None
        if min(value for value in dataclasses.astuple(limit) if value is not None) <= 0 or (limit.fraction or 0) > 1:
            raise HfnlpError(problem)
        return limit

    def size(self, available: int, batch_size: int) -> int:
        """The number of rows to keep out of ``available`` with batches of ``batch_size`` rows."""
        if self.batches is not None:
            wanted = self.batches * batch_size
        elif self.examples is not None:
            wanted = self.examples
        else:
            wanted = max(1, round(available * self.fraction))
        return min(wanted, available)

    @property
    def label(self) -> str:
        """A short name for folder suffixes: ``1batch``, ``0.5``, ``2000``."""
        if self.batches is not None:
            return f"{self.batches}batch"
        return str(self.examples) if self.examples is not None else str(self.fraction)


def debug_recipe(
    recipe: Recipe, limit: TrainLimit | None, overfit_batch: bool, limit_eval: int | None = None
) -> Recipe:
    """The recipe of a debug run: its own output folder (``<output_dir>-limit-<train>-eval<N>``, what the limits
    are); for ``--overfit-batch`` fixed steps, no evaluation."""
    if overfit_batch:
        training = dataclasses.replace(
            recipe.training,
            max_steps=OVERFIT_STEPS,
            eval_strategy="no",
            early_stopping_patience=None,
            logging_steps=5,
        )
        return dataclasses.replace(recipe, output_dir=f"{recipe.output_dir}-overfit-batch", training=training)
    labels = [*([limit.label] if limit is not None else []), *([f"eval{limit_eval}"] if limit_eval else [])]
    if labels:
        return dataclasses.replace(recipe, output_dir=f"{recipe.output_dir}-limit-{'-'.join(labels)}")
    return recipe


class DebugSubsetCallback(TrainerCallback):
    """Train on a fixed random subset of the training split; with ``overfit``, check that the loss falls."""

    def __init__(self, limit: TrainLimit, batch_size: int, seed: int, overfit: bool = False) -> None:
        self.limit = limit
        self.batch_size = batch_size
        self.seed = seed
        self.overfit = overfit
        self.selected: int | None = None

    def select_train_dataset(self, dataset: Any) -> Any:
        """The subset (the same rows on every process and every epoch; shuffled by the Trainer as usual)."""
        self.selected = self.limit.size(len(dataset), self.batch_size)
        return fixed_subset(dataset, self.selected, self.seed)

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Overfitting one batch: no checkpoint every (one-step) epoch."""
        if self.overfit:
            args.save_strategy = SaveStrategy.NO

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Refuse to train silently on the whole split when the subset hook did not run."""
        if self.selected is None:
            raise HfnlpError(
                "--limit-train / --overfit-batch: the training split was not limited (engine.fit did not call "
                "select_train_dataset on the callbacks)"
            )

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """``--overfit-batch``: fail clearly unless the training loss fell."""
        if not self.overfit:
            return
        losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
        if len(losses) < 2:
            raise HfnlpError("--overfit-batch: too few logged losses to judge; lower training.logging_steps")
        first, last = losses[0], losses[-1]
        if not last <= first * (1 - OVERFIT_MIN_DROP):
            raise HfnlpError(
                f"--overfit-batch: the loss did not fall on a single batch of {self.selected} examples in "
                f"{state.global_step} steps ({first:.4f} → {last:.4f}; expected at most {1 - OVERFIT_MIN_DROP:.0%} "
                "of the start). Check that labels reach the loss, the learning rate, frozen layers and the data."
            )
