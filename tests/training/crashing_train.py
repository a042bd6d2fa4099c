"""``python tests/training/crashing_train.py WHEN STEP train RECIPE ...``: ``hfnlp train`` that fails at a chosen point.

``WHEN`` is

* ``step``: killed by SIGKILL right after optimizer step ``STEP`` (in the middle of an epoch);
* ``checkpoint``: killed by SIGKILL while ``checkpoint-STEP`` is written (its weights and optimizer state are on
  disk, its RNG state is cut short and its trainer state is missing);
* ``full-disk``: the disk fills up while ``checkpoint-STEP`` is written: once its weights are on disk, a file size
  limit below the size of the optimizer state makes that write fail (EFBIG) the way a full disk fails (ENOSPC).

SIGKILL cannot be caught, so nothing in hfnlp or Trainer gets a chance to clean up: what is on disk is exactly
what a power cut or the OOM killer would leave. The point is chosen, not raced, so every run fails at the same
place.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from hfnlp.cli import main


class KillAfterStep(TrainerCallback):
    """SIGKILL this process once optimizer step ``step`` is done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_after_step(step: int) -> None:
    original_init = Trainer.__init__

    def init_with_killer(self: Trainer, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.add_callback(KillAfterStep(step))

    Trainer.__init__ = init_with_killer


def before_writing(method: str, step: int, failure: Callable[[Trainer, Path], None]) -> None:
    """Run ``failure(trainer, checkpoint_dir)`` just before ``Trainer.<method>`` writes ``checkpoint-<step>``."""
    original = getattr(Trainer, method)

    def patched(self: Trainer, output_dir: str) -> None:
        if self.state.global_step == step:
            failure(self, Path(output_dir))
        original(self, output_dir)

    setattr(Trainer, method, patched)


def kill_mid_write(trainer: Trainer, checkpoint: Path) -> None:
    (checkpoint / "rng_state.pth").write_bytes(b"PK\x03\x04 cut short")
    os.kill(os.getpid(), signal.SIGKILL)


def fill_the_disk(trainer: Trainer, checkpoint: Path) -> None:
    # Adam keeps two moments per weight, so the optimizer state is about twice the weights: a limit of 1.5 times
    # the weights stops it, and still lets the small files of the error path (logs, status) through.
    limit = int(1.5 * (checkpoint / "model.safetensors").stat().st_size)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


if __name__ == "__main__":
    when, step = sys.argv[1], int(sys.argv[2])
    if when == "step":
        kill_after_step(step)
    elif when == "checkpoint":
        before_writing("_save_rng_state", step, kill_mid_write)
    elif when == "full-disk":
        before_writing("_save_optimizer_and_scheduler", step, fill_the_disk)
    else:
        sys.exit(f"unknown WHEN {when!r}: step, checkpoint or full-disk")
    sys.exit(main(sys.argv[3:]))
