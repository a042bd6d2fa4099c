"""Sharing tests: tiny real runs of every model family, trained once per session through ``hfnlp train``."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfnlp.cli import main
from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv

QUIET = {"report_to": [], "disable_tqdm": True, "logging_steps": 5}
TEXT_MODELS: dict[str, dict[str, Any]] = {
    # a 2-layer BiLSTM with "last" pooling: the hardest case for the ONNX export (final states of both directions)
    "text_rnn": {"type": "text_rnn", "embedding_dim": 16, "hidden_size": 16, "pooling": "last"},
    "text_cnn": {"type": "text_cnn", "embedding_dim": 16, "num_filters": 8},
    "fasttext": {"type": "fasttext", "embedding_dim": 16, "ngram_sizes": [2], "ngram_buckets": 1000},
}
TASK_MODULES = {"captioner": "hfnlp.tasks.image_captioning", "image_classifier": "hfnlp.tasks.image_classification"}
FAMILIES = [*TEXT_MODELS, *TASK_MODULES]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def train(root: Path, name: str, recipe: dict[str, Any]) -> Path:
    """Run ``hfnlp train`` on ``recipe`` with output in ``root/name``; return the run folder."""
    recipe = {"output_dir": str(root / name), **recipe, "training": {**QUIET, **recipe["training"]}}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert main(["train", str(path)]) == 0
    return root / name


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sharing-runs")


@pytest.fixture(scope="session")
def reviews_csv(runs_root: Path) -> Path:
    return write_csv(runs_root / "reviews.csv", make_sentiment_rows(300))


def _text_run(runs_root: Path, reviews_csv: Path, family: str) -> Path:
    return train(
        runs_root,
        family,
        {
            "task": "text-classification",
            "description": f"Tiny {family} test model.",
            "data": {"train_file": str(reviews_csv), "label_names": ["negative", "positive"]},
            "tokenizer": {"level": "word", "max_length": 32},
            "model": TEXT_MODELS[family],
            "training": {"num_train_epochs": 2, "per_device_train_batch_size": 32, "learning_rate": 0.01},
        },
    )


def _caption_run(runs_root: Path) -> Path:
    return train(
        runs_root,
        "captioner",
        {
            "task": "image-captioning",
            "data": {"builtin": "synthetic_scenes", "builtin_size": 60, "image_size": 32},
            "tokenizer": {"max_length": 12},
            "model": {
                "type": "captioner",
                "encoder_name": "test_efficientnet",
                "encoder_pretrained": False,
                "embedding_dim": 16,
                "hidden_size": 32,
                "attention_dim": 16,
            },
            "training": {"num_train_epochs": 1, "per_device_train_batch_size": 32, "metric_for_best_model": "bleu_4"},
        },
    )


def _image_run(runs_root: Path) -> Path:
    from hfnlp.data.synthetic_images import write_shapes_folder

    shapes = write_shapes_folder(runs_root / "shapes", per_class=20, size=32)
    return train(
        runs_root,
        "image_classifier",
        {
            "task": "image-classification",
            "data": {"train_file": str(shapes)},
            "model": {"type": "image_classifier", "architecture": "test_resnet", "pretrained": False, "image_size": 32},
            "training": {"num_train_epochs": 1, "per_device_train_batch_size": 16},
        },
    )


@pytest.fixture(scope="session")
def run_of(runs_root: Path, reviews_csv: Path):
    """``run_of(family)``: the run folder of a tiny model of that family, trained on first request."""
    runs: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family in TASK_MODULES and importlib.util.find_spec(TASK_MODULES[family]) is None:
            pytest.skip(f"{TASK_MODULES[family]} is not in the tree yet")
        if family not in runs:
            if family in TEXT_MODELS:
                runs[family] = _text_run(runs_root, reviews_csv, family)
            else:
                runs[family] = _caption_run(runs_root) if family == "captioner" else _image_run(runs_root)
        return runs[family]

    return get
