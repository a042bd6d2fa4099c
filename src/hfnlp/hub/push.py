"""Pushing a model folder to the Hugging Face Hub with ``huggingface_hub`` (``create_repo`` + ``upload_folder``).

The token comes from ``HF_TOKEN`` or the stored login (``hf auth login``). Offline, without a token, or when the
Hub cannot be reached, :class:`HubError` says so in one line; the local folder is only ever read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError

from hfnlp.errors import HfnlpError


class HubError(HfnlpError):
    """The Hub could not be used: offline mode, no token, no connection, or the Hub refused the request."""


def push_model_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    readme: str | None = None,
    token: str | None = None,
) -> str:
    """Upload ``folder`` to the model repo ``repo_id`` (created if missing) in one commit; return the commit URL.

    ``revision`` names a branch, created from the default branch if missing. ``readme`` replaces the folder's
    ``README.md`` in the upload (e.g. a card whose snippet names ``repo_id``) without touching the local file.
    """
    folder = Path(folder)
    intact = f"the local folder {folder} is unchanged"
    if constants.is_offline_mode():
        raise HubError(f"cannot push to the Hub in offline mode (HF_HUB_OFFLINE=1); {intact}")
    token = token or get_token()
    if not token:
        raise HubError(f"no Hugging Face token: set HF_TOKEN or log in with `hf auth login`; {intact}")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        with _staged(folder, readme) as upload_dir:
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=upload_dir,
                revision=revision,
                commit_message=f"Upload {folder.name} with hfnlp",
            )
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise HubError(f"the Hub refused the push to {repo_id} (HTTP {status}): {error}; {intact}") from error
    except Exception as error:
        if not _is_network_error(error):
            raise
        raise HubError(f"cannot reach the Hub at {api.endpoint} ({type(error).__name__}: {error}); {intact}") from error
    return info.commit_url


def _is_network_error(error: Exception) -> bool:
    # huggingface_hub's HTTP client (httpx or its successor, depending on the version) raises TransportError
    # subclasses for refused connections, DNS failures and timeouts; offline mode raises an OSError.
    return isinstance(error, OSError) or any(cls.__name__ == "TransportError" for cls in type(error).__mro__)


@contextlib.contextmanager
def _staged(folder: Path, readme: str | None) -> Iterator[Path]:
    """``folder`` itself, or (with ``readme``) a temporary twin of hard links (copies across file systems)
    whose ``README.md`` is ``readme``."""
    if readme is None:
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix=".hfnlp-push-", dir=folder.parent) as staging:
        root = Path(staging) / folder.name
        shutil.copytree(folder, root, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("README.md"))
        (root / "README.md").write_text(readme, encoding="utf-8")
        yield root


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
