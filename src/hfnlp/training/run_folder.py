"""The run folder: every file a run writes, by name, in one place.

Training, the hub (cards, export, push) and run operations (control, live status, dashboard, sweep) all find a
run's files through :class:`RunFolder`, so a file name is written down exactly once.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from hfnlp.errors import HfnlpError
from hfnlp.recipe import Recipe

logger = logging.getLogger(__name__)

RECIPE = "recipe.yaml"
METRICS = "metrics.json"
TOKENIZER_DIR = "tokenizer"
MODEL_DIR = "model"
EXPORT_DIR = "export"
CURVES = "curves.png"
CLASSIFICATION_REPORT = "classification_report.json"
CONFUSION_MATRIX_CSV = "confusion_matrix.csv"
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
SAMPLES = "samples.jsonl"
CARD_EXAMPLES = "card_examples.json"
EXAMPLE_IMAGE = "example.png"
FEATURES_DIR = "features"
CONTROL_LOG = "control_log.jsonl"
CONTROL_INBOX = "control/inbox"
LIVE_STATUS = "live_status.json"
TRAIN_LOG = "train.log"
CLASSIFICATION_REPORT_TXT = "classification_report.txt"
# transformers' TRAINER_STATE_NAME, written here so that the names load without torch (`hfnlp control` starts
# at once); Trainer writes it last in a checkpoint, so a checkpoint without it was cut short.
CHECKPOINT_STATE = "trainer_state.json"


class RunFolder:
    """The folder a run writes: resolved recipe, tokenizer, checkpoints, logs, reports, final model."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def tokenizer_dir(self) -> Path:
        """Where the run's tokenizer and image processor are saved once, and reused on resume."""
        return self.path / TOKENIZER_DIR

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def card_examples_path(self) -> Path:
        """Real inputs for the model card's usage snippet, chosen by the run from its test split."""
        return self.path / CARD_EXAMPLES

    def file(self, name: str) -> Path:
        """The path of the run file ``name`` (one of this module's names)."""
        return self.path / name

    def checkpoint_dir(self, step: int) -> Path:
        return self.path / f"checkpoint-{step}"

    def export_dir(self, step: int) -> Path:
        return self.path / EXPORT_DIR / f"checkpoint-{step}"

    def checkpoint_steps(self) -> list[int]:
        """The steps of the checkpoints in the folder, in order."""
        steps = (p.name.removeprefix("checkpoint-") for p in self.path.glob("checkpoint-*"))
        return sorted(int(step) for step in steps if step.isdigit())

    def last_complete_checkpoint(self) -> str | None:
        """The newest completely written checkpoint (see :func:`last_complete_checkpoint`), or ``None``."""
        return last_complete_checkpoint(self.path) if self.path.is_dir() else None

    def prepare(self, recipe: Recipe, resume: bool, main_process: bool = True) -> str | None:
        """Create or reopen the folder; return the checkpoint to resume from (``None`` = start fresh).

        A folder that already holds checkpoints or a finished model is never overwritten silently. Only the main
        process writes the resolved recipe; the others only find the checkpoint.
        """
        checkpoint = self.last_complete_checkpoint()
        if not resume and (checkpoint or self.model_dir.exists()):
            raise HfnlpError(
                f"{self.path} already holds a run ({'checkpoints' if checkpoint else 'a final model'}); "
                "pass --resume to continue it, or choose another folder with --set output_dir=..."
            )
        if resume and checkpoint is None:
            logger.warning("--resume: no checkpoint in %s yet, starting from the beginning", self.path)
        if main_process:
            self.path.mkdir(parents=True, exist_ok=True)
            recipe.save(self.recipe_path)
        return checkpoint


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint that was completely written, or ``None``.

    Trainer writes ``trainer_state.json`` last, so a checkpoint whose state file is missing or cut short was
    interrupted (a crash or kill while saving); it is moved aside as ``checkpoint-N.incomplete`` so neither
    resume nor checkpoint rotation ever picks it.
    """
    from transformers.trainer_utils import get_last_checkpoint  # here: the names above load without torch

    while (candidate := get_last_checkpoint(str(folder))) is not None:
        try:
            json.loads((Path(candidate) / CHECKPOINT_STATE).read_text())
            return candidate
        except (OSError, ValueError):
            aside = Path(f"{candidate}.incomplete")
            shutil.rmtree(aside, ignore_errors=True)
            Path(candidate).rename(aside)
            logger.warning("ignoring %s: it was not completely written (moved to %s)", candidate, aside.name)
    return None
