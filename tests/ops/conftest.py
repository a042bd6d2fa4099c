"""Small text-classification recipes for the control-room tests (tiny generated data, fast models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv


@pytest.fixture
def make_recipe(tmp_path: Path):
    """``make_recipe(rows=..., **training)`` → path of a fastText recipe over generated reviews in ``tmp_path``."""

    def make(rows: int = 200, name: str = "run", notify: dict[str, Any] | None = None, **training: Any) -> Path:
        data = tmp_path / f"reviews-{rows}.csv"
        if not data.exists():
            write_csv(data, make_sentiment_rows(rows))
        recipe = {
            "task": "text-classification",
            "output_dir": str(tmp_path / name),
            "data": {"train_file": str(data), "label_names": ["negative", "positive"]},
            "tokenizer": {"level": "word", "max_length": 40},
            "model": {"type": "fasttext", "embedding_dim": 16},
            "training": {
                "num_train_epochs": 2,
                "per_device_train_batch_size": 16,
                "learning_rate": 0.01,
                "report_to": [],
                "disable_tqdm": True,
                "logging_steps": 1,
                **training,
            },
        }
        if notify is not None:
            recipe["notify"] = notify
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(recipe))
        return path

    return make


@pytest.fixture
def extra_callbacks(monkeypatch: pytest.MonkeyPatch):
    """``extra_callbacks(*callbacks)``: add callbacks to the ``hfnlp train`` runs of this test."""
    from hfnlp.ops.session import ControlRoom
    from tests.ops.pacing import extended_init

    def add(*callbacks: Any) -> None:
        monkeypatch.setattr(ControlRoom, "__init__", extended_init(list(callbacks)))

    return add


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield
