"""Checks of a recipe's ``notify`` section that need no environment, run before any work: each target names the
environment variable holding its apprise URL (the URL carries credentials, and the recipe is copied into the run
folder and the model card), and no setting would silently send nothing."""

from __future__ import annotations

import math
import re

from hfnlp.errors import RecipeError
from hfnlp.recipe import NotifyConfig

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_notify_settings(config: NotifyConfig) -> None:
    """Refuse (:class:`~hfnlp.errors.RecipeError`, one line naming the setting) a ``url_env`` that is not the name of
    an environment variable — most likely the URL itself, which is then not repeated — and a time-out or retry
    count that would send nothing. Needs no environment: call it before any work."""
    if config.timeout_s <= 0 or not math.isfinite(config.timeout_s):
        raise RecipeError(f"notify.timeout_s must be a positive number of seconds, got {config.timeout_s!r}")
    if config.retries < 0:
        raise RecipeError(f"notify.retries must be 0 or more, got {config.retries!r}")
    for index, target in enumerate(config.notifiers):
        if not ENV_NAME.fullmatch(target.url_env):
            raise RecipeError(
                f"notify.notifiers[{index}].url_env must be the name of an environment variable (such as "
                "HFNLP_NOTIFY_URL) that holds the apprise URL, not the URL itself"
            )
