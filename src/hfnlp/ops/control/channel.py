"""The command channel of live training control: requests in, a record of every change out.

Front ends (``hfnlp control``, the dashboard) validate a :class:`ControlCommand` and :meth:`ControlChannel.submit`
it: an atomically written JSON file in ``RUN_DIR/control/inbox/``. The training process's
:class:`~hfnlp.ops.control.callback.LiveControlCallback` picks requests up between optimizer steps, applies them
and appends one line per action to ``RUN_DIR/control_log.jsonl`` (time, step, old → new, source, request id). The
run's live status (``RUN_DIR/live_status.json``) tells front ends whether a training loop is there to listen.

This module uses the standard library (and hfnlp's run-file names) only, so that ``hfnlp control`` and
``hfnlp dashboard`` start instantly.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hfnlp.errors import HfnlpError
from hfnlp.training.run_folder import CONTROL_INBOX, CONTROL_LOG, LIVE_STATUS, RunFolder

MAX_REQUEST_BYTES = 4096
ACTIONS = ("learning_rate", "num_train_epochs", "stop_after_epoch", "checkpoint_now")


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
    def from_mapping(cls, data: Any, source: str) -> ControlCommand:
        """Validate a request (JSON from a front end); raise ``ValueError`` naming the first problem."""
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
        command = cls(**values, source=source, id=uuid.uuid4().hex[:12])
        if not command.actions():
            raise ValueError(f"nothing to do: give at least one of {', '.join(ACTIONS)}")
        return command

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

    def submit(self, command: ControlCommand) -> str:
        """Queue ``command`` for the training loop (atomic: the loop never sees half a file); return its id."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{command.id}"
        partial = self.inbox / f"{name}.part"
        partial.write_text(json.dumps(asdict(command)))
        os.replace(partial, self.inbox / f"{name}.json")
        return command.id

    def receive(self) -> list[ControlCommand]:
        """Take every queued request, oldest first (unreadable ones are dropped with a record in the log)."""
        if not self.inbox.is_dir():
            return []
        commands = []
        for path in sorted(self.inbox.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                commands.append(ControlCommand(**data))
            except (OSError, ValueError, TypeError) as error:
                self.record(
                    {"action": "request", "applied": False, "reason": f"unreadable request {path.name}: {error}"}
                )
            path.unlink(missing_ok=True)
        return commands

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one entry to ``control_log.jsonl`` (with the wall-clock time) and return it."""
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every recorded entry, oldest first."""
        if not self.log_path.is_file():
            return []
        return [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def status(self) -> dict[str, Any]:
        """The run's live status (``{}`` before the training loop wrote one), with ``alive`` added."""
        try:
            status = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {"alive": False}
        status["alive"] = status.get("state") == "running" and _process_exists(status.get("pid"))
        return status

    def require_running(self) -> None:
        """Raise a clear error unless a training loop is running in this folder and listening."""
        status = self.status()
        if not status.get("alive"):
            state = status.get("state", "no live status")
            raise HfnlpError(f"{self.run_dir}: no training is running there ({state}); nothing would apply the change")

    def wait_for(self, request_id: str, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """The log entries of request ``request_id`` once all ``count`` are there, the run ends, or time is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            alive = self.status().get("alive")  # read first: a run that ended has written all it ever will
            found = [entry for entry in self.entries() if entry.get("request") == request_id]
            if len(found) >= count or not alive or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


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
