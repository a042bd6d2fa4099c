"""``python tests/training/paused_train.py READY RELEASE train RECIPE ...``: ``hfnlp train`` that pauses when training
begins: it creates the file ``READY``, then waits (at most two minutes) until the file ``RELEASE`` exists.

While it waits it holds its run folder as any training does, so a test can start a second run on the same folder at a
chosen moment instead of racing one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from hfnlp.cli import main


class PauseAtTrainBegin(TrainerCallback):
    def __init__(self, ready: Path, release: Path) -> None:
        self.ready, self.release = ready, release

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ready.touch()
        deadline = time.monotonic() + 120
        while not self.release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


if __name__ == "__main__":
    ready, release = Path(sys.argv[1]), Path(sys.argv[2])
    original_init = Trainer.__init__

    def init_with_pause(self: Trainer, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.add_callback(PauseAtTrainBegin(ready, release))

    Trainer.__init__ = init_with_pause
    sys.exit(main(sys.argv[3:]))
