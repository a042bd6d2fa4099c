"""What a run prints: progress bars only on a terminal, and none of the libraries' noise about hfnlp's small models.

A progress bar redraws itself with carriage returns and cursor moves (``\\x1b[A`` for the nested evaluation bar);
written to a log file or a pipe, that is debris. So when stderr is not a terminal every library's bars are off:
Trainer's (``disable_tqdm``, see :func:`trainer_console_arguments`), transformers', the Hub's and datasets'.
transformers' "Loading weights" / "Writing model shards" bars are off everywhere: hfnlp's models load and save in
a blink, so the bars only push the run's own log lines away. Downloads keep their bars on a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import huggingface_hub.utils
import torch
import transformers


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr, where progress bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def quiet_console(stream: TextIO | None = None) -> bool:
    """Turn off the libraries' progress bars that do not belong on ``stream`` (default: stderr); return whether it is
    a terminal. Call once, before any model is loaded or data read (the CLI does, for every command)."""
    terminal = is_terminal(stream)
    hub_bars = not huggingface_hub.utils.are_progress_bars_disabled()
    transformers.utils.logging.disable_progress_bar()  # the loading / saving bars (it also turns the Hub's off)
    if terminal and hub_bars:
        huggingface_hub.utils.enable_progress_bars()  # a download of pretrained weights is worth watching
    if not terminal:
        # datasets takes a second and a half to import, which commands that read no data set (predict) spare: its
        # variable turns the bars off when it is imported later.
        if "datasets" in sys.modules:
            sys.modules["datasets"].disable_progress_bars()
        else:
            os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("transformers.trainer_utils").addFilter(_drop_checkpoint_mtime_notice)
    return terminal


def _drop_checkpoint_mtime_notice(record: logging.LogRecord) -> bool:
    """transformers says it orders checkpoints by step number when file times tie (a second's resolution on many
    file systems): which it should anyway, and nothing a user can act on."""
    return "mtime may not be reliable" not in record.getMessage()


def trainer_console_arguments(disable_tqdm: bool | None, stream: TextIO | None = None) -> dict[str, Any]:
    """``TrainingArguments`` keys for a quiet console: Trainer's bars off unless stderr is a terminal (the recipe's
    ``training.disable_tqdm`` wins when set), and no pinned memory without an accelerator to copy to (DataLoader
    warns about it on every loader)."""
    return {
        "disable_tqdm": (not is_terminal(stream)) if disable_tqdm is None else disable_tqdm,
        "dataloader_pin_memory": torch.accelerator.is_available(),
    }


__all__ = ["is_terminal", "quiet_console", "trainer_console_arguments"]
