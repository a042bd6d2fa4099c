"""Checks of sub-command options, done before any work so that a long run never fails at its end (a private module:
:mod:`hfnlp.cli` adds no sub-command for it)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from hfnlp.errors import HfnlpError


def at_least_one(value: int | None, option: str) -> None:
    """Refuse a count option below 1 (``None``: not given)."""
    if value is not None and value < 1:
        raise HfnlpError(f"{option} must be at least 1, got {value}")


def finite(value: float | None, option: str) -> None:
    """Refuse an infinite or NaN number option (``None``: not given)."""
    if value is not None and not math.isfinite(value):
        raise HfnlpError(f"{option} must be a finite number, got {value}")


def check_output_file(path: str | Path, option: str) -> Path:
    """``path`` as a file the command may (over)write: not a folder, in an existing folder it may write in."""
    target = Path(path)
    if not str(path) or target.is_dir():
        raise HfnlpError(f"{option} {str(path)!r} is a folder; give a file name")
    folder = target.parent
    if not folder.is_dir():
        raise HfnlpError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise HfnlpError(f"{option} {path}: no permission to write there")
    return target


def check_output_dir(path: str | Path, option: str) -> Path:
    """``path`` as a folder the command may create (with its parents) and write in: not a file."""
    target = Path(path)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise HfnlpError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HfnlpError(f"{option} {path}: no permission to write in {existing}")
    return target
