"""Checks of a recipe's ``notify`` section that need no environment, run before any work: a secret written where
the recipe keeps it (the recipe is copied into the run folder and the model card) is refused in favour of an
environment variable, and settings that would silently send nothing are refused."""

from __future__ import annotations

import math
import re
import urllib.parse

from hfnlp.errors import RecipeError
from hfnlp.recipe import NotifyConfig

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
            problem = url_problem(value, written=True) if value else None
            if problem:
                raise RecipeError(f"{where}: {setting}: {problem}")
        if any(PROVIDER_SECRETS.search(uid) for uid in target.uids):
            raise RecipeError(f"{where}: uids: holds an app token; name its environment variable with token_env")


def url_problem(url: str, written: bool) -> str | None:
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
