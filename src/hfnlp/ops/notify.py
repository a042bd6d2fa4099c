"""Run notifications: epoch end (optional), run end, early stop and crash, sent to the recipe's ``notify`` targets.

Targets are apprise URLs (:mod:`hfnlp.ops.notifiers`: Telegram, e-mail, Slack, Discord, a JSON webhook, DingTalk,
Feishu, WxPusher and a hundred more), read from the environment variables the recipe names: a URL holds its
credentials, so it is never written to the run folder or a card, and never logged. Sending happens on a background
thread with a time-out and retries, so a slow or failing target never slows down or stops training; failures are
logged.
At the end of a run the notifications still queued get at most :func:`exit_wait_s` seconds, so a target that is
down delays the exit by that much at most.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfnlp.ops.notifiers import Notification, RedactSecrets, Target, build_targets
from hfnlp.recipe import NotifyConfig

logger = logging.getLogger(__name__)
SKIPPED_METRICS = ("runtime", "per_second", "total_flos")
# How long the notifications of a run's end may delay the exit, whatever timeout_s and retries say, and the longest
# pause between two tries of one target.
MAX_EXIT_WAIT_S = 60.0
MAX_BACKOFF_S = 30.0


def exit_wait_s(timeout_s: float, retries: int, targets: int) -> float:
    """The longest the notifications still queued at a run's end may delay its exit: every try of every target
    (``timeout_s × (retries + 1) × targets``, back-off pauses included), and never more than
    :data:`MAX_EXIT_WAIT_S`."""
    return min(timeout_s * (retries + 1) * max(targets, 1), MAX_EXIT_WAIT_S)


class Dispatcher:
    """Sends notifications on a background thread: time-out per try, retries with a capped back-off, failures
    logged; at :meth:`close`, what is left gets :func:`exit_wait_s` seconds in all."""

    def __init__(
        self, targets: list[Target], timeout_s: float = 10.0, retries: int = 2, redact: RedactSecrets | None = None
    ) -> None:
        self.targets = targets
        self.timeout_s = timeout_s
        self.retries = retries
        self.exit_wait_s = exit_wait_s(timeout_s, retries, len(targets))
        # apprise and urllib3 log the URLs posted to: their records pass through this filter until the end.
        self._redact = redact or RedactSecrets([])
        self._deadline: float | None = None  # set by close(): tries and pauses stop there
        self._closing = threading.Event()
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="hfnlp-notify", daemon=True)
        if targets:
            self._thread.start()
        else:
            self._redact.remove()

    def send(self, note: Notification) -> None:
        """Queue ``note`` for every target; returns at once."""
        if self.targets:
            self._queue.put(note)

    def close(self) -> None:
        """Deliver what is queued within :attr:`exit_wait_s` seconds, then stop (what is left is dropped)."""
        if not self._thread.is_alive():
            return
        self._deadline = time.monotonic() + self.exit_wait_s
        self._closing.set()
        self._queue.put(None)
        self._thread.join(self.exit_wait_s)
        if self._thread.is_alive():
            logger.warning("notifications: gave up on the undelivered ones after %g s", self.exit_wait_s)
        else:  # a thread still sending keeps the filter: apprise may still log the URL
            self._redact.remove()

    def _work(self) -> None:
        while (note := self._queue.get()) is not None:
            for target in self.targets:
                self._deliver(target, note)

    def _left_s(self) -> float | None:
        """Seconds left before the exit deadline (``None``: no run end yet, no deadline)."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _deliver(self, target: Target, note: Notification) -> None:
        for attempt in range(self.retries + 1):
            left = self._left_s()
            if left is not None and left <= 0:
                logger.warning(
                    "notification %s to %s abandoned: the %g s allowed at the end of the run are used up",
                    note.event,
                    target.name,
                    self.exit_wait_s,
                )
                return
            try:
                sent = target.send(note)
                problem = "the service refused it or could not be reached (apprise's warning above says which)"
            except Exception as error:  # noqa: BLE001 — a failing target must never stop training
                sent, problem = False, self._redact.redact(f"{type(error).__name__}: {error}")
            if sent:
                logger.info("notification %s sent to %s", note.event, target.name)
                return
            logger.warning(
                "notification %s to %s failed (try %d of %d): %s",
                note.event,
                target.name,
                attempt + 1,
                self.retries + 1,
                problem,
            )
            if attempt < self.retries:
                self._back_off(min(2**attempt, MAX_BACKOFF_S))

    def _back_off(self, delay_s: float) -> None:
        """Pause ``delay_s`` before the next try, or less once :meth:`close` has set the exit deadline."""
        end = time.monotonic() + delay_s
        if self._closing.wait(delay_s):  # the run ended (before or during the pause): keep to its deadline
            time.sleep(max(0.0, min(end, self._deadline) - time.monotonic()))


class NotifyCallback(TrainerCallback):
    """Sends the run's notifications: epoch end (if configured) and early stop from the training loop; run end
    and crash through :meth:`run_end` and :meth:`crash`, which :func:`hfnlp.ops.session.train` calls around the
    task."""

    def __init__(self, config: NotifyConfig, run_dir: str | Path, environ: Mapping[str, str] = os.environ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        targets, redact = build_targets(config, environ)
        self.dispatcher = Dispatcher(targets, config.timeout_s, config.retries, redact)
        self._main = os.environ.get("RANK", "0") == "0"  # known for sure only once training begins
        self._step: int | None = None
        self._epoch: float | None = None
        self._metrics: dict[str, float] = {}
        self._epoch_pending = False

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Remember which process sends and where training stands (a crash reports the last known position)."""
        self._main = state.is_world_process_zero
        self._step, self._epoch = state.global_step, state.epoch

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Keep the position for a crash report; an epoch without evaluation is announced at the next step."""
        self._flush_epoch()
        self._step, self._epoch = state.global_step, state.epoch

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """The epoch is announced after its evaluation, with its metrics."""
        self._epoch_pending = self.config.on_epoch_end
        self._step, self._epoch = state.global_step, state.epoch

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Keep the latest validation metrics (and send a pending epoch-end notification with them)."""
        self._metrics = _numbers(kwargs.get("metrics") or {})
        self._flush_epoch()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Training stopped before its planned end: announce the early stop."""
        self._flush_epoch()
        self._step, self._epoch = state.global_step, state.epoch
        if state.global_step < state.max_steps:
            metrics = dict(self._metrics)
            if state.best_metric is not None:
                metrics[f"best {args.metric_for_best_model}"] = state.best_metric
            self._send("early_stop", metrics)

    def run_end(self, summary: Mapping[str, Any]) -> None:
        """Announce the finished run with its test metrics (``metrics.json``); deliver before returning."""
        test = _numbers(summary.get("test", {}))
        self._send("run_end", {f"test_{key}": value for key, value in test.items()})
        self.dispatcher.close()

    def crash(self, error: BaseException) -> None:
        """Announce a crash with the error and where it happened; deliver before returning."""
        last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        place = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
        self._send("crash", self._metrics, error=f"{type(error).__name__}: {error}{place}")
        self.dispatcher.close()

    def _flush_epoch(self) -> None:
        if self._epoch_pending:
            self._epoch_pending = False
            self._send("epoch_end", self._metrics)

    def _send(self, event: str, metrics: dict[str, float], error: str | None = None) -> None:
        if self._main:
            note = Notification(
                event, self.run_dir.name, str(self.run_dir.resolve()), self._step, self._epoch, metrics, error
            )
            self.dispatcher.send(note)


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        key: round(float(value), 6)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not any(part in key for part in SKIPPED_METRICS) and key != "epoch"
    }
