"""glibc keeps the memory a process frees: large blocks come from the heap instead of fresh mappings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hfnlp.training import allocator

GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None

# In a fresh process: how many bytes glibc holds in mmapped blocks while a 16 MB block is alive (mallinfo2's hblkhd).
PROBE = """
import ctypes, sys
from hfnlp.training.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in names.split()]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(16 * 2**20)
print(kept, libc.mallinfo2().hblkhd >= 16 * 2**20)
libc.free(ctypes.c_void_p(block))
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_a_16_mb_block_comes_from_the_heap_once_freed_memory_is_kept() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    runs = {
        how: subprocess.run([sys.executable, "-c", PROBE, how], capture_output=True, text=True, env=env, check=True)
        for how in ("keep", "default")
    }
    assert runs["keep"].stdout.split() == ["True", "False"]  # set, and the block is not a mapping of its own
    assert runs["default"].stdout.split() == ["False", "True"]  # glibc's default: a fresh mapping


def test_a_user_tuning_the_allocator_is_left_alone(monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert allocator.keep_freed_memory() is False
