"""The command channel of live training control: requests in, a record of every change out.

Front ends (``hfnlp control``, the dashboard) validate a :class:`ControlCommand` and :meth:`ControlChannel.submit`
it: an atomically written JSON file in ``RUN_DIR/control/inbox/``. The training process's
:class:`~hfnlp.ops.control.callback.LiveControlCallback` picks requests up between optimizer steps, validates them
again (a request it cannot use is recorded as rejected, never a crash), applies them and appends one line per
action to ``RUN_DIR/control_log.jsonl`` (time, step, old → new, source, request id). A last line cut short (the
process killed while appending) is ignored with a warning and dropped at the next append; a damaged line before it
is an error naming the file and the line. The run's live status (``RUN_DIR/live_status.json``) tells front ends
whether a training loop is there to listen, and the recipe's learning rate that bounds live changes.

A live learning rate must be finite, positive and at most :data:`MAX_LR_FACTOR` times the recipe's: far above the
rate a recipe was tuned for, training diverges (a NaN model) instead of learning faster.

This module uses the standard library (and hfnlp's run-file names) only, so that ``hfnlp control`` and
``hfnlp dashboard`` start instantly.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hfnlp.errors import HfnlpError
from hfnlp.training.run_folder import CONTROL_INBOX, CONTROL_LOG, LIVE_STATUS, RECIPE, RunFolder

logger = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 4096
ACTIONS = ("learning_rate", "num_train_epochs", "stop_after_epoch", "checkpoint_now")
MAX_LR_FACTOR = 100.0


@dataclass(frozen=True)
class ControlCommand:
    """One request: any of a new learning rate, a new number of epochs, stop after this epoch, checkpoint now."""

    learning_rate: float | None = None
    num_train_epochs: float | None = None
    stop_after_epoch: bool = False
    checkpoint_now: bool = False
    source: str = "cli"
    id: str = ""

    @classmethod
    def from_mapping(cls, data: Any, source: str, request_id: str | None = None) -> ControlCommand:
        """Validate a request (JSON from a front end, or a queued one with its ``request_id``); raise ``ValueError``
        naming the first problem."""
        if not isinstance(data, dict):
            raise ValueError("a control request must be a JSON object")
        unknown = sorted(set(data) - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; valid: {', '.join(ACTIONS)}")
        values: dict[str, Any] = {}
        for key in ("learning_rate", "num_train_epochs"):
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{key} must be a positive number, got {value!r}")
            values[key] = float(value)
        for key in ("stop_after_epoch", "checkpoint_now"):
            value = data.get(key, False)
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, got {value!r}")
            values[key] = value
        command = cls(**values, source=source, id=request_id or uuid.uuid4().hex[:12])
        if not command.actions():
            raise ValueError(f"nothing to do: give at least one of {', '.join(ACTIONS)}")
        return command

    def check_limits(self, recipe_learning_rate: float | None) -> None:
        """Raise ``ValueError`` if the new learning rate is above :data:`MAX_LR_FACTOR` × the recipe's (``None``:
        unknown, no bound)."""
        if self.learning_rate is None or recipe_learning_rate is None:
            return
        limit = MAX_LR_FACTOR * recipe_learning_rate
        if self.learning_rate > limit:
            raise ValueError(
                f"learning_rate {self.learning_rate:g} is too high: at most {MAX_LR_FACTOR:g} × the recipe's "
                f"{recipe_learning_rate:g}, so {limit:g}"
            )

    def actions(self) -> list[str]:
        """The actions this request asks for, in the order they are applied."""
        return [key for key in ACTIONS if getattr(self, key) not in (None, False)]


class ControlChannel:
    """The run folder's side of live control: submit requests, read them back, record and read changes."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        folder = RunFolder(self.run_dir)
        self.inbox = folder.file(CONTROL_INBOX)
        self.log_path = folder.file(CONTROL_LOG)
        self.status_path = folder.file(LIVE_STATUS)
        self._torn_line_reported = False

    def require_run_folder(self) -> None:
        """Raise a clear error unless ``run_dir`` is a run's folder (it holds the run's recipe or live status)."""
        if not self.run_dir.is_dir():
            if self.run_dir.exists():
                raise HfnlpError(f"{self.run_dir} is a file, not a run folder")
            raise HfnlpError(f"no run folder at {self.run_dir}")
        if not (self.status_path.is_file() or (self.run_dir / RECIPE).is_file()):
            raise HfnlpError(f"{self.run_dir} is not an hfnlp run folder (no {RECIPE} or {LIVE_STATUS} in it)")

    def submit(self, command: ControlCommand) -> str:
        """Queue ``command`` for the training loop (atomic: the loop never sees half a file); return its id."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{command.id}"
        partial = self.inbox / f"{name}.part"
        partial.write_text(json.dumps(asdict(command)))
        os.replace(partial, self.inbox / f"{name}.json")
        return command.id

    def receive(self) -> list[ControlCommand]:
        """Take every queued request, oldest first, validated again: one that is unreadable or invalid (written by
        something other than a front end) is dropped with a rejection in the log and a warning."""
        if not self.inbox.is_dir():
            return []
        commands = []
        for path in sorted(self.inbox.glob("*.json")):
            request_id = path.stem.rpartition("-")[2]
            try:
                data = json.loads(path.read_bytes())
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                source, request_id = str(data.pop("source", "unknown")), str(data.pop("id", request_id))
                commands.append(ControlCommand.from_mapping(data, source, request_id))
            except (OSError, ValueError, RecursionError) as error:
                reason = f"unusable request {path.name}: {error}"
                logger.warning("live control: %s", reason)
                self.record({"action": "request", "request": request_id, "applied": False, "reason": reason})
            path.unlink(missing_ok=True)
        return commands

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one entry to ``control_log.jsonl`` (with the wall-clock time) and return it; a last line cut
        short by a kill is dropped first, so that it does not end up in the middle of the log."""
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab+") as handle:
            self._end_last_line(handle)
            handle.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
        return entry

    def _end_last_line(self, handle: BinaryIO) -> None:
        """Make the log (open for appending and reading) end with a whole line."""
        size = handle.seek(0, os.SEEK_END)
        if not size:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        start = data.rfind(b"\n") + 1
        if _entry(data[start:]) is None:
            logger.warning("%s: dropping its last line, cut short: %r", self.log_path, data[start : start + 80])
            handle.truncate(start)
        else:  # a whole entry that only lost its line end
            handle.write(b"\n")

    def entries(self) -> list[dict[str, Any]]:
        """Every recorded entry, oldest first. A last line cut short is left out (with a warning, once); a damaged
        line before it raises :class:`~hfnlp.errors.HfnlpError` naming the file and the line."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise HfnlpError(f"{self.log_path}: cannot be read: {error.strerror or error}") from None
        lines = [(number, line) for number, line in enumerate(data.split(b"\n"), 1) if line.strip()]
        entries = []
        for index, (number, line) in enumerate(lines):
            entry = _entry(line)
            if entry is not None:
                entries.append(entry)
            elif index < len(lines) - 1:
                raise HfnlpError(
                    f"{self.log_path}, line {number}: not a JSON object; the control log is damaged (fix or remove "
                    "that line)"
                )
            elif not self._torn_line_reported:
                self._torn_line_reported = True
                logger.warning("%s: ignoring its last line (%d), cut short", self.log_path, number)
        return entries

    def status(self) -> dict[str, Any]:
        """The run's live status (``{}`` before the training loop wrote one), with ``alive`` added."""
        try:
            status = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            status = None
        if not isinstance(status, dict):
            return {"alive": False}
        status["alive"] = status.get("state") == "running" and _process_exists(status.get("pid"))
        return status

    def require_running(self) -> dict[str, Any]:
        """The run's live status; raise a clear error unless a training loop is running in this folder and
        listening."""
        status = self.status()
        if not status.get("alive"):
            state = status.get("state", "no live status")
            raise HfnlpError(f"{self.run_dir}: no training is running there ({state}); nothing would apply the change")
        return status

    def wait_for(self, request_id: str, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """The log entries of request ``request_id`` once all ``count`` are there, the run ends, or time is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            alive = self.status().get("alive")  # read first: a run that ended has written all it ever will
            found = [entry for entry in self.entries() if entry.get("request") == request_id]
            if len(found) >= count or not alive or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def _entry(line: bytes) -> dict[str, Any] | None:
    """One control log line as its entry (``None``: not a whole JSON object)."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


def _process_exists(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
