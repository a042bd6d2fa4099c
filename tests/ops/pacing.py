"""Helpers for tests that steer a live run: :class:`Pace` makes every optimizer step take at least some time, so
that a test (or a person) can act between steps on any machine, however fast; :func:`wait_until` polls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from hfnlp.ops.session import ControlRoom


class Pace(TrainerCallback):
    """Sleep after each optimizer step."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        time.sleep(self.seconds)


def extended_init(callbacks: list[TrainerCallback]) -> Any:
    """A :class:`ControlRoom` ``__init__`` that also appends ``callbacks`` (tests patch it in)."""
    original = ControlRoom.__init__

    def patched(self: ControlRoom, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.callbacks.extend(callbacks)

    return patched


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
