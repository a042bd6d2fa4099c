"""Atomic writes: a file or a folder is written into a temporary sibling, then put in place in one step.

A process killed at any moment (SIGKILL, the OOM killer, a full disk that ends the run) therefore leaves either the
previous complete file or folder or the new complete one, never a half-written one that a reader would load. A
folder that already exists is swapped with its replacement by ``renameat2(RENAME_EXCHANGE)`` where the system has
it (Linux on local file systems), so its name never stands empty; elsewhere the old folder is renamed aside just
before the new one is renamed in (a window of two renames).

The guarantee is against a dying process, not a power cut: nothing is ``fsync``-ed, as the operating system keeps
what a killed process wrote. Standard library only, so that run operations load it without torch.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD = -100  # <fcntl.h>: paths relative to the working directory
_RENAME_EXCHANGE = 2  # <linux/fs.h>


def staging_path(path: str | Path, owner: int | None = None) -> Path:
    """The temporary sibling that :func:`atomic_path` writes ``path`` into: ``<stem>.tmp-<owner><suffix>``.

    The suffix stays last because writers pick the format from it (``savefig`` of a ``.png``). ``owner`` defaults to
    this process's id; the processes of one run that write one folder together pass the main process's id.
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.tmp-{os.getpid() if owner is None else owner}{path.suffix}")


@contextmanager
def atomic_path(path: str | Path, owner: int | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write a file or a folder into; when the block ends without error it
    replaces ``path`` in one step, otherwise it is removed and ``path`` is left as it was."""
    path = Path(path)
    staged = staging_path(path, owner)
    _remove(staged)  # what a killed writer of the same name left
    try:
        yield staged
        if staged.is_dir() and path.is_dir():
            _replace_folder(staged, path)
        else:
            os.replace(staged, path)
    finally:
        _remove(staged)  # on success: the old folder, swapped out; on error: the unfinished new one


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as staged:
        staged.write_text(text, encoding="utf-8")
    return Path(path)


def copy_file(source: str | Path, target: str | Path) -> Path:
    """Copy ``source`` to ``target`` atomically (a new file: a hard link to the old target is never written
    through); return ``target``."""
    with atomic_path(target) as staged:
        shutil.copyfile(source, staged)
    return Path(target)


def _replace_folder(new: Path, old: Path) -> None:
    """Put folder ``new`` at ``old``'s place; ``new``'s name then holds the old folder (or nothing)."""
    if _exchange(new, old):
        return
    aside = old.with_name(f"{old.name}.old-{os.getpid()}")
    os.rename(old, aside)
    os.rename(new, old)
    os.rename(aside, new)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; ``False`` where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # not glibc ≥ 2.28 (macOS, musl, Windows)
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system (NFS, ...) or kernel without it
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
