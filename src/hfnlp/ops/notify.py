"""Run notifications: epoch end (optional), run end, early stop and crash, sent to the recipe's ``notify`` targets.

Targets: a generic JSON webhook, WxPusher (``POST {endpoint}/api/send/message`` with ``appToken``, ``content``,
``uids``/``topicIds``), and Slack-, Feishu- and DingTalk-style bot webhooks (Feishu and DingTalk optionally
signed with ``secret_env``). Secrets — tokens, signing secrets, webhook URLs that embed a key — are read from the
environment variables the recipe names; they are never logged, never written to the run folder, and redacted
from error messages. :func:`check_notify_settings` refuses a recipe that writes one in a setting instead (the
recipe is copied into the run folder and the model card), before any work. Sending happens on a background thread
with a time-out and retries, so a slow or failing target never slows down or stops training; failures are logged.
At the end of a run the notifications still queued get at most :func:`exit_wait_s` seconds, so a target that is
down delays the exit by that much at most.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import re
import socket
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfnlp.errors import RecipeError
from hfnlp.recipe import NotifierConfig, NotifyConfig

logger = logging.getLogger(__name__)
SKIPPED_METRICS = ("runtime", "per_second", "total_flos")
# How long the notifications of a run's end may delay the exit, whatever timeout_s and retries say, and the longest
# pause between two tries of one target.
MAX_EXIT_WAIT_S = 60.0
MAX_BACKOFF_S = 30.0
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Parts of a query key that mark its value as a credential (key, token, access_token, secret, sign, password, …).
SECRET_QUERY_WORDS = ("key", "token", "secret", "sig", "pass", "pwd", "auth", "credential")
# Provider tokens and webhook addresses whose path is itself the credential.
PROVIDER_SECRETS = re.compile(
    r"xox[abposr]-|\b(?-i:AT_)[A-Za-z0-9]{8,}|hooks\.slack\.com/|/open-apis/bot/|discord(?:app)?\.com/api/webhooks/"
    r"|api\.telegram\.org/bot",
    re.IGNORECASE,
)
# Targets whose webhook URL always embeds the key (Slack: in the path, Feishu: in the path, DingTalk: access_token).
SECRET_URL_TYPES = ("slack", "feishu", "dingtalk")


@dataclass
class Notification:
    """What happened, as sent to every target (the generic webhook gets exactly :meth:`payload`)."""

    event: str  # epoch_end | run_end | early_stop | crash
    run: str
    run_dir: str
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def text(self) -> str:
        """A one-paragraph human summary (what chat targets show)."""
        where = (
            f" at epoch {self.epoch:g}, step {self.step}" if self.epoch is not None and self.step is not None else ""
        )
        headline = {
            "epoch_end": f"hfnlp {self.run}: epoch done{where}",
            "run_end": f"hfnlp {self.run}: run finished{where}",
            "early_stop": f"hfnlp {self.run}: stopped early{where}",
            "crash": f"hfnlp {self.run}: CRASHED{where}",
        }[self.event]
        lines = [headline]
        lines += [
            f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}"
            for key, value in self.metrics.items()
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The generic JSON body."""
        return {
            "event": self.event,
            "run": self.run,
            "run_dir": self.run_dir,
            "host": socket.gethostname(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "step": self.step,
            "epoch": self.epoch,
            "metrics": self.metrics,
            "error": self.error,
            "text": self.text,
        }


class Notifier:
    """One target: builds the HTTP request for a notification and checks the service's answer."""

    kind = "webhook"

    def __init__(self, url: str, secrets: tuple[str, ...] = ()) -> None:
        self.url = url
        self.secrets = tuple(secret for secret in secrets if secret)

    def request(self, note: Notification) -> tuple[str, dict[str, Any]]:
        """``(url, json_body)`` to POST."""
        return self.url, note.payload()

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers (besides the JSON content type)."""
        return {}

    def check(self, answer: bytes) -> None:
        """Raise if the service answered 2xx but reports a failure in its body."""

    def redact(self, text: str) -> str:
        """``text`` with every secret of this target replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class BearerWebhook(Notifier):
    """The generic JSON webhook with an ``Authorization: Bearer`` token (``token_env``)."""

    def __init__(self, url: str, token: str, secrets: tuple[str, ...]) -> None:
        super().__init__(url, (*secrets, token))
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class WxPusher(Notifier):
    """WxPusher: ``POST {endpoint}/api/send/message`` with the app token and the user / topic ids."""

    kind = "wxpusher"

    def __init__(self, endpoint: str, app_token: str, uids: list[str], topic_ids: list[int]) -> None:
        super().__init__(endpoint.rstrip("/") + "/api/send/message", (app_token,))
        self.app_token, self.uids, self.topic_ids = app_token, uids, topic_ids

    def request(self, note: Notification) -> tuple[str, dict[str, Any]]:
        body = {
            "appToken": self.app_token,
            "content": note.text,
            "summary": note.text.splitlines()[0][:99],
            "contentType": 1,
            "uids": self.uids,
            "topicIds": self.topic_ids,
        }
        return self.url, body

    def check(self, answer: bytes) -> None:
        reply = json.loads(answer or b"{}")
        if reply.get("code") != 1000:
            raise RuntimeError(f"WxPusher answered code {reply.get('code')}: {reply.get('msg')}")


class Slack(Notifier):
    """A Slack incoming webhook (the URL is the secret)."""

    kind = "slack"

    def request(self, note: Notification) -> tuple[str, dict[str, Any]]:
        return self.url, {"text": note.text}


class SignedBot(Notifier):
    """A chat bot webhook whose URL is a secret and whose messages are signed when a signing secret is set."""

    def __init__(self, url: str, secret: str | None) -> None:
        super().__init__(url, (url, secret or ""))
        self.secret = secret


class Feishu(SignedBot):
    """A Feishu (Lark) custom bot; signed when a secret is configured."""

    kind = "feishu"

    def request(self, note: Notification) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": note.text}}
        if self.secret:
            timestamp = str(int(time.time()))
            key = f"{timestamp}\n{self.secret}".encode()
            body["timestamp"] = timestamp
            body["sign"] = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return self.url, body

    def check(self, answer: bytes) -> None:
        reply = json.loads(answer or b"{}")
        code = reply.get("code", reply.get("StatusCode", 0))
        if code != 0:
            raise RuntimeError(f"Feishu answered code {code}: {reply.get('msg')}")


class DingTalk(SignedBot):
    """A DingTalk custom robot; signed (``&timestamp=…&sign=…``) when a secret is configured."""

    kind = "dingtalk"

    def request(self, note: Notification) -> tuple[str, dict[str, Any]]:
        url = self.url
        if self.secret:
            timestamp = str(round(time.time() * 1000))
            digest = hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            sign = urllib.parse.quote_plus(base64.b64encode(digest))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"
        return url, {"msgtype": "text", "text": {"content": note.text}}

    def check(self, answer: bytes) -> None:
        reply = json.loads(answer or b"{}")
        if reply.get("errcode", 0) != 0:
            raise RuntimeError(f"DingTalk answered errcode {reply.get('errcode')}: {reply.get('errmsg')}")


def check_notify_settings(config: NotifyConfig) -> None:
    """Refuse (:class:`~hfnlp.errors.RecipeError`, one line naming the target and the setting) a ``notify``
    section that writes a secret where the recipe keeps it — URL user info, a query key such as ``key``, ``token``,
    ``access_token``, ``secret`` or ``sign``, a provider token, or the webhook URL of a service whose URL is the
    key — instead of in an environment variable named by ``url_env`` / ``token_env`` / ``secret_env``; and
    settings that would silently send nothing. Needs no environment: call it before any work."""
    if config.timeout_s <= 0 or not math.isfinite(config.timeout_s):
        raise RecipeError(f"notify.timeout_s must be a positive number of seconds, got {config.timeout_s!r}")
    if config.retries < 0:
        raise RecipeError(f"notify.retries must be 0 or more, got {config.retries!r}")
    for index, target in enumerate(config.notifiers):
        where = f"notify.notifiers[{index}] ({target.type})"
        for setting in ("url_env", "token_env", "secret_env"):
            name = getattr(target, setting)
            if name is not None and not ENV_NAME.fullmatch(name):
                # The value is not repeated: it may well be the secret itself.
                raise RecipeError(
                    f"{where}: {setting} must be the name of an environment variable (such as HFNLP_WEBHOOK), "
                    "not the value"
                )
        if target.url and target.url_env:
            raise RecipeError(f"{where}: give url or url_env, not both")
        if target.url and target.type in SECRET_URL_TYPES:
            raise RecipeError(
                f"{where}: url: a {target.type} webhook URL carries its key; put the URL in an environment "
                "variable and name it with url_env"
            )
        for setting in ("url", "endpoint"):
            value = getattr(target, setting)
            problem = _url_problem(value, written=True) if value else None
            if problem:
                raise RecipeError(f"{where}: {setting}: {problem}")
        if any(PROVIDER_SECRETS.search(uid) for uid in target.uids):
            raise RecipeError(f"{where}: uids: holds an app token; name its environment variable with token_env")


def _url_problem(url: str, written: bool) -> str | None:
    """What is wrong with ``url`` as a notification address, and what to do instead (``None``: nothing). One
    ``written`` in the recipe must hold no credential; one from the environment may, except user info, which
    urllib would hand to the name resolver as part of the host name."""
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        return "must be an http:// or https:// address"
    if "@" in parts.netloc:
        return "has user info (user:password@) in it, which is never sent; give a bearer token with token_env"
    if not written:
        return None
    move = "; put the URL in an environment variable and name it with url_env"
    for key, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if any(word in key.lower() for word in SECRET_QUERY_WORDS):
            return f"has a secret in its query ({key}=…){move}"
    if PROVIDER_SECRETS.search(url):
        return f"has a service's token in it{move}"
    return None


def build_notifiers(config: NotifyConfig, environ: Mapping[str, str] = os.environ) -> list[Notifier]:
    """The recipe's targets. A target whose environment variable is not set is left out with a warning
    (training goes on); a target missing a required key is a :class:`~hfnlp.errors.RecipeError`."""
    notifiers = []
    for index, target in enumerate(config.notifiers):
        where = f"notify.notifiers[{index}] ({target.type})"
        try:
            notifiers.append(_build(target, environ, where))
        except KeyError as missing:
            logger.warning("%s: environment variable %s is not set; this target is skipped", where, missing)
    return notifiers


def _build(target: NotifierConfig, environ: Mapping[str, str], where: str) -> Notifier:
    def secret(name: str | None) -> str | None:
        return environ[name] if name else None

    if target.type == "wxpusher":
        if not target.token_env or not (target.uids or target.topic_ids):
            raise RecipeError(f"{where}: needs token_env and at least one of uids / topic_ids")
        return WxPusher(target.endpoint, secret(target.token_env), target.uids, target.topic_ids)
    url = secret(target.url_env) or target.url
    if not url:
        raise RecipeError(f"{where}: needs url or url_env")
    problem = _url_problem(url, written=False) if target.url_env else None  # a written one: see check_notify_settings
    if problem:  # the URL is not repeated: it came from the environment, so it may be a secret
        raise RecipeError(f"{where}: the URL in ${target.url_env} {problem}")
    if target.type == "feishu":
        return Feishu(url, secret(target.secret_env))
    if target.type == "dingtalk":
        return DingTalk(url, secret(target.secret_env))
    secrets = (url,) if target.url_env else ()
    if target.type == "slack":
        return Slack(url, secrets)
    token = secret(target.token_env)
    return BearerWebhook(url, token, secrets) if token else Notifier(url, secrets)


def exit_wait_s(timeout_s: float, retries: int, targets: int) -> float:
    """The longest the notifications still queued at a run's end may delay its exit: every try of every target
    (``timeout_s × (retries + 1) × targets``, back-off pauses included), and never more than
    :data:`MAX_EXIT_WAIT_S`."""
    return min(timeout_s * (retries + 1) * max(targets, 1), MAX_EXIT_WAIT_S)


class Dispatcher:
    """Sends notifications on a background thread: time-out per try, retries with a capped back-off, failures
    logged; at :meth:`close`, what is left gets :func:`exit_wait_s` seconds in all."""

    def __init__(self, notifiers: list[Notifier], timeout_s: float = 10.0, retries: int = 2) -> None:
        self.notifiers = notifiers
        self.timeout_s = timeout_s
        self.retries = retries
        self.exit_wait_s = exit_wait_s(timeout_s, retries, len(notifiers))
        self._deadline: float | None = None  # set by close(): tries and pauses stop there
        self._closing = threading.Event()
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="hfnlp-notify", daemon=True)
        if notifiers:
            self._thread.start()

    def send(self, note: Notification) -> None:
        """Queue ``note`` for every target; returns at once."""
        if self.notifiers:
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

    def _work(self) -> None:
        while (note := self._queue.get()) is not None:
            for notifier in self.notifiers:
                self._deliver(notifier, note)

    def _left_s(self) -> float | None:
        """Seconds left before the exit deadline (``None``: no run end yet, no deadline)."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _deliver(self, notifier: Notifier, note: Notification) -> None:
        for attempt in range(self.retries + 1):
            left = self._left_s()
            if left is not None and left <= 0:
                logger.warning(
                    "notification %s to %s abandoned: the %g s allowed at the end of the run are used up",
                    note.event,
                    notifier.kind,
                    self.exit_wait_s,
                )
                return
            try:
                url, body = notifier.request(note)
                headers = {"Content-Type": "application/json", **notifier.headers()}
                data = json.dumps(body, ensure_ascii=False).encode()
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                timeout = self.timeout_s if left is None else min(self.timeout_s, left)
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                    notifier.check(response.read())
                logger.info("notification %s sent to %s", note.event, notifier.kind)
                return
            except Exception as error:  # noqa: BLE001 — a failing target must never stop training
                message = notifier.redact(f"{type(error).__name__}: {error}")
                logger.warning(
                    "notification %s to %s failed (try %d of %d): %s",
                    note.event,
                    notifier.kind,
                    attempt + 1,
                    self.retries + 1,
                    message,
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
        self.dispatcher = Dispatcher(build_notifiers(config, environ), config.timeout_s, config.retries)
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
