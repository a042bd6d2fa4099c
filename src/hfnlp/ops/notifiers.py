"""Notification targets: what a notification says (:class:`Notification`) and how each service is sent it — a
generic JSON webhook (optionally with a bearer token), WxPusher, Slack, and Feishu / DingTalk bots (optionally signed).
Secrets come from the environment variables the recipe names and are redacted from every error message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hfnlp.errors import RecipeError
from hfnlp.ops.notify_settings import url_problem
from hfnlp.recipe import NotifierConfig, NotifyConfig

logger = logging.getLogger(__name__)


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
    problem = url_problem(url, written=False) if target.url_env else None  # a written one: see check_notify_settings
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
