"""The run folder: every file a run writes, by name, in one place.

Training, the hub (cards, export, push) and run operations (control, live status, dashboard, sweep) all find a
run's files through :class:`RunFolder`, so a file name is written down exactly once.

A run owns its folder: :meth:`RunFolder.locked` holds an exclusive lock on it for the whole run, so a second run
on the same ``output_dir`` is refused instead of overwriting the first one's files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hfnlp.errors import HfnlpError
from hfnlp.recipe import Recipe
from hfnlp.training.atomic import atomic_path, write_text
from hfnlp.training.resume import check_resumable, recipe_changes

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
RESUME_LOG = "resume_log.jsonl"
LOCK = "run.lock"
# transformers' TRAINER_STATE_NAME, written here so that the names load without torch (`hfnlp control` starts
# at once); Trainer writes it last in a checkpoint, so a checkpoint without it was cut short.
CHECKPOINT_STATE = "trainer_state.json"


class RunFolder:
    """The folder a run writes: resolved recipe, tokenizer, checkpoints, logs, reports, final model."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: The settings the last :meth:`prepare` of a resume changed: ``{dotted key: (saved, new)}``.
        self.resume_changes: dict[str, tuple[Any, Any]] = {}

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
    def finished(self) -> bool:
        """The folder holds a complete run: its metrics and its final model."""
        return self.metrics_path.is_file() and (self.model_dir / "config.json").is_file()

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

    @contextmanager
    def locked(self, processes: int = 1) -> Iterator[None]:
        """Own the folder for the block: create it and hold an exclusive lock on its ``run.lock``.

        The lock file records the owner (pid, host, command, start, number of processes) for the error a second run
        gets. Under ``accelerate launch`` the main process alone takes it, before the others start preparing, so the
        processes of one run never lock each other out. The operating system drops the lock when its process ends,
        however it ends: a lock file left by a dead run is no obstacle.
        """
        if self.path.exists() and not self.path.is_dir():
            raise HfnlpError(f"output_dir {self.path} is a file, not a folder; choose another output_dir")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.file(LOCK), "a+", encoding="utf-8")  # noqa: SIM115  (held for the whole block)
        except OSError as error:
            raise HfnlpError(f"cannot create the run folder {self.path}: {error.strerror or error}") from error
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HfnlpError(
                    f"{self.path} is in use by another run ({_describe_owner(self.file(LOCK))}); wait for it to end, "
                    "or choose another output_dir"
                ) from None
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": " ".join(sys.argv),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "processes": processes,
            }
            # The locked file itself is rewritten (a replaced file would be another, unlocked one).
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(owner))
            handle.flush()
            yield

    def prepare(self, recipe: Recipe, resume: bool, main_process: bool = True) -> str | None:
        """Create or reopen the folder; return the checkpoint to resume from (``None`` = start fresh).

        A folder that already holds checkpoints or a finished model is never overwritten silently, and a folder whose
        checkpoints or tokenizer came from another recipe is resumed only when the recipe changed nothing they depend
        on (see :mod:`hfnlp.training.resume`): ``recipe.yaml`` is rewritten only once that is known, and the changes
        are appended to ``resume_log.jsonl``. Only the main process writes (it holds :meth:`locked`); the others only
        find the checkpoint.
        """
        if main_process:
            self._recover_leftovers()
        checkpoint = self.last_complete_checkpoint()
        if not resume and (checkpoint or self.model_dir.exists()):
            raise HfnlpError(
                f"{self.path} already holds a run ({'checkpoints' if checkpoint else 'a final model'}); "
                "pass --resume to continue it, or choose another folder with --set output_dir=..."
            )
        if resume and checkpoint is None:
            logger.warning("--resume: no checkpoint in %s yet, starting from the beginning", self.path)
        if resume and checkpoint is not None and not recipe.training.resumable_checkpoints:
            # Trainer would load the weights and silently start a new optimizer, schedule and data order.
            raise HfnlpError(
                f"{checkpoint} holds the weights only (training.extra_args.save_only_model: true), not the optimizer "
                "and schedule state that resuming needs; train again in a new folder (--set output_dir=...)"
            )
        if not main_process:
            self.resume_changes = self._logged_changes() if resume else {}
            return checkpoint
        # Only what the saved recipe produced binds the new one: checkpoints, a final model, a trained tokenizer.
        if self.recipe_path.is_file() and (resume or self.tokenizer_dir.exists()):
            saved = yaml.safe_load(self.recipe_path.read_text(encoding="utf-8"))
            self.resume_changes = recipe_changes(saved, recipe.to_dict())
            check_resumable(self.resume_changes, str(self.path))
        if resume:
            self._log_resume(checkpoint)
        self.path.mkdir(parents=True, exist_ok=True)  # already there when locked(): prepare alone creates it too
        with atomic_path(self.recipe_path) as staged:
            recipe.save(staged)
        return checkpoint

    def _log_resume(self, checkpoint: str | None) -> None:
        entry = {
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "checkpoint": Path(checkpoint).name if checkpoint else None,
            "changed": {key: {"saved": old, "new": new} for key, (old, new) in self.resume_changes.items()},
        }
        log = self.file(RESUME_LOG)
        before = log.read_text(encoding="utf-8") if log.is_file() else ""
        write_text(log, before + json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        if self.resume_changes:
            logger.info("--resume with changed settings: %s", ", ".join(self.resume_changes))

    def _logged_changes(self) -> dict[str, tuple[Any, Any]]:
        """The changes of this resume as the main process logged them (it prepares first, the others follow)."""
        log = self.file(RESUME_LOG)
        lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
        changed = json.loads(lines[-1])["changed"] if lines else {}
        return {key: (values["saved"], values["new"]) for key, values in changed.items()}

    def _recover_leftovers(self) -> None:
        """Clear what a killed run left of its atomic writes (the folder is locked to this run): unfinished temporary
        siblings go; a folder renamed aside (where folders cannot be exchanged) goes back if its place is empty."""
        for leftover in self.path.glob("*.tmp-*"):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        for aside in self.path.glob("*.old-*"):
            original = aside.with_name(aside.name.rsplit(".old-", 1)[0])
            if original.exists():
                shutil.rmtree(aside)
            else:
                aside.rename(original)


def _describe_owner(lock_file: Path) -> str:
    """Who holds ``lock_file``, from what the holder wrote into it."""
    try:
        owner = json.loads(lock_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # the holder is writing it this very moment
        return "its owner is starting"
    return f"pid {owner['pid']} on {owner['host']} since {owner['started']}: {owner['command']}"


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
