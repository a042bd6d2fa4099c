"""Notification targets: what a notification says (:class:`Notification`) and where it goes — any service
`apprise <https://github.com/caronc/apprise>`_ knows (``tgram://``, ``mailto://``, ``slack://``, ``discord://``,
``json://``, ``dingtalk://``, ``feishu://``, ``wxpusher://`` ... over a hundred).

A target's apprise URL holds its credentials, so it only ever comes from the environment variable the recipe names
(``url_env``); one variable may hold several URLs (separated by commas or spaces). Apprise logs URLs (paths and
tokens included) at debug level, and so does urllib3: :class:`RedactSecrets` keeps those values out of their records.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import apprise

from hfnlp.errors import RecipeError
from hfnlp.recipe import NotifyConfig

logger = logging.getLogger(__name__)
# The loggers that quote the URLs apprise posts to: apprise's own and, at debug level, urllib3's (requests).
URL_LOGGERS = ("apprise", "urllib3.connectionpool")
# How each event looks in the services that show a kind of message (colour, icon).
NOTIFY_TYPES = {
    "epoch_end": apprise.NotifyType.INFO,
    "run_end": apprise.NotifyType.SUCCESS,
    "early_stop": apprise.NotifyType.WARNING,
    "crash": apprise.NotifyType.FAILURE,
}


@dataclass
class Notification:
    """What happened, as sent to every target: :attr:`title` and :attr:`text`."""

    event: str  # epoch_end | run_end | early_stop | crash
    run: str
    run_dir: str
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def title(self) -> str:
        """One line: the run, what happened and where training stood."""
        where = (
            f" at epoch {self.epoch:g}, step {self.step}" if self.epoch is not None and self.step is not None else ""
        )
        return {
            "epoch_end": f"hfnlp {self.run}: epoch done{where}",
            "run_end": f"hfnlp {self.run}: run finished{where}",
            "early_stop": f"hfnlp {self.run}: stopped early{where}",
            "crash": f"hfnlp {self.run}: CRASHED{where}",
        }[self.event]

    @property
    def text(self) -> str:
        """The metrics, one per line, then the error and the run folder."""
        lines = [
            f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}"
            for key, value in self.metrics.items()
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        lines.append(f"run folder: {self.run_dir}")
        return "\n".join(lines)

    @property
    def notify_type(self) -> str:
        """Apprise's kind of message for this event."""
        return NOTIFY_TYPES[self.event]


class Target:
    """One apprise URL: :meth:`send` delivers a notification once, within ``timeout_s`` per connection and read."""

    def __init__(self, plugin: Any, name: str, timeout_s: float) -> None:
        self.plugin = plugin
        self.name = name  # what logs call it: the recipe setting and the service, never the URL
        plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout_s

    def send(self, note: Notification) -> bool:
        """Whether the service accepted ``note`` (apprise logs why not, redacted)."""
        return bool(self.plugin.notify(body=note.text, title=note.title, notify_type=note.notify_type))


class RedactSecrets(logging.Filter):
    """Replaces the given secrets with ``***`` in every record of the logger it is added to."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def add(self) -> None:
        """Filter the records of :data:`URL_LOGGERS` from now on."""
        for name in URL_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        """Stop filtering them."""
        for name in URL_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message in place; never drop it."""
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def build_targets(config: NotifyConfig, environ: Mapping[str, str] = os.environ) -> tuple[list[Target], RedactSecrets]:
    """The recipe's targets, and the filter that keeps their URLs (and the URLs' parts) out of the records of
    :data:`URL_LOGGERS` — added to them before apprise reads a URL; :meth:`RedactSecrets.remove` takes it off.

    A target whose environment variable is not set is left out with a warning (training goes on); one that holds no
    URL apprise knows is a :class:`~hfnlp.errors.RecipeError` (the value is not repeated: it may be a secret)."""
    values = {}
    for index, target in enumerate(config.notifiers):
        value = environ.get(target.url_env, "").strip()
        if value:
            values[index] = apprise.utils.parse.parse_urls(value)
        else:
            logger.warning(
                "notify.notifiers[%d]: environment variable %s is not set; this target is skipped",
                index,
                target.url_env,
            )
    redact = RedactSecrets([part for urls in values.values() for url in urls for part in (url, *_url_parts(url))])
    redact.add()
    targets: list[Target] = []
    for index, urls in values.items():
        where = f"notify.notifiers[{index}]"
        plugins = [apprise.Apprise.instantiate(url) for url in urls]
        if not plugins or None in plugins:
            redact.remove()
            raise RecipeError(
                f"{where}: ${config.notifiers[index].url_env} holds a URL apprise does not know; give service URLs "
                "such as json://host/path, tgram://bottoken/chatid or mailto://user:password@host "
                "(https://github.com/caronc/apprise/wiki)"
            )
        targets += [Target(plugin, f"{where} ({plugin.service_name})", config.timeout_s) for plugin in plugins]
    return targets, redact


def _url_parts(url: str) -> list[str]:
    """The pieces of ``url`` a log line may quote on their own, as written and decoded: user, password, path segments,
    query values and the words of those (a ``Bearer%20TOKEN`` header value gives ``TOKEN``)."""
    _, _, rest = url.partition("://")
    host_and_path, _, query = rest.partition("?")
    credentials, _, location = host_and_path.rpartition("@")
    parts = [*credentials.split(":"), *location.split("/")[1:], *(item.partition("=")[2] for item in query.split("&"))]
    decoded = [word for part in parts for word in urllib.parse.unquote_plus(part).split()]
    return [part for part in {*parts, *decoded} if len(part) >= 6]  # short pieces ("json", "80") are no secret
