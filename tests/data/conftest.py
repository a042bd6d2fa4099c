"""Data tests: one torch thread (image decoding and transforms of tiny images gain nothing from more)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import one_torch_thread


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield
