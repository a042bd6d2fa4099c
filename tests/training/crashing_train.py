"""``python tests/training/crashing_train.py WHEN STEP train RECIPE ...``: ``hfnlp train`` killed by SIGKILL.

``WHEN`` is ``step`` (right after optimizer step ``STEP``, in the middle of an epoch) or ``checkpoint`` (while
``checkpoint-STEP`` is being written: its weights and optimizer state are on disk, its RNG and trainer state
are not). SIGKILL cannot be caught, so nothing in hfnlp or Trainer gets a chance to clean up: what is on disk
is exactly what a power cut or the OOM killer would leave.
"""

import os
import signal
import sys
from pathlib import Path

from transformers import Trainer, TrainerCallback

from hfnlp.cli import main


class KillAfterStep(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_while_saving(step: int):
    save_rng_state = Trainer._save_rng_state

    def patched(self: Trainer, output_dir: str) -> None:
        if self.state.global_step == step:
            (Path(output_dir) / "rng_state.pth").write_bytes(b"PK\x03\x04 cut short")
            os.kill(os.getpid(), signal.SIGKILL)
        save_rng_state(self, output_dir)

    return patched


if __name__ == "__main__":
    when, step = sys.argv[1], int(sys.argv[2])
    if when == "step":
        original_init = Trainer.__init__

        def init_with_killer(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            self.add_callback(KillAfterStep(step))

        Trainer.__init__ = init_with_killer
    else:
        Trainer._save_rng_state = kill_while_saving(step)
    sys.exit(main(sys.argv[3:]))
