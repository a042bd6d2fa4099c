"""Shared test set-up: offline, quiet, and small generated data sets."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from more threads. Set for the whole process: a run fits torch's threads to the machine
# (hfnlp.training.threads) unless OMP_NUM_THREADS says how many, which would undo the one_thread fixtures.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

POSITIVE_WORDS = ["good", "great", "excellent", "tasty", "fast", "fresh", "lovely", "perfect"]
NEGATIVE_WORDS = ["bad", "awful", "cold", "slow", "stale", "rude", "late", "terrible"]
FILLER_WORDS = ["the", "food", "was", "and", "delivery", "really", "very", "order", "my", "it", "today"]


def make_sentiment_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Generated reviews whose label is decided by which sentiment words they contain (learnable, not trivial:
    fillers dominate, the sentiment word sits anywhere, lengths vary a lot)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.choice(["negative", "positive"])
        words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(3, 25))]
        for _ in range(rng.randint(1, 2)):
            words.insert(
                rng.randrange(len(words) + 1), rng.choice(POSITIVE_WORDS if label == "positive" else NEGATIVE_WORDS)
            )
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", make_sentiment_rows(600))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for the duration: tiny models gain nothing from more, and on a busy 2-core machine the
    threads' synchronisation makes them several times slower. The previous count is restored."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def requires_shared_data(*parts: str) -> pytest.MarkDecorator:
    """Skip unless ``../shared/data/<parts>`` exists (a user's fresh clone has no ../shared)."""
    return pytest.mark.skipif(not SHARED_DATA.joinpath(*parts).exists(), reason=f"needs {SHARED_DATA.joinpath(*parts)}")


# ----- images: a generated image folder with the clutter real downloads have ------------------------------------
QUIET_TRAINING = {"report_to": [], "disable_tqdm": True, "logging_steps": 5}


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``circle/``, ``square/``, ``triangle/`` with 40 JPEGs each, plus a ``.DS_Store`` and a ``notes.txt``."""
    from hfnlp.data.synthetic_images import write_shapes_folder

    root = write_shapes_folder(tmp_path_factory.mktemp("shapes"), per_class=40, size=40)
    (root / "circle" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00")
    (root / "square" / "notes.txt").write_text("not an image", encoding="utf-8")
    return root


def write_image_recipe(path: Path, data: dict[str, Any], model: dict[str, Any] | None = None, **training: Any) -> Path:
    """An image-classification recipe for a tiny timm backbone trained from scratch, written to ``path``."""
    recipe = {
        "task": "image-classification",
        "output_dir": str(path.parent / "run"),
        "data": data,
        "model": {"type": "image_classifier", "architecture": "test_resnet", "pretrained": False, "image_size": 40}
        | (model or {}),
        "training": QUIET_TRAINING | training,
    }
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


# The smallest text-classification recipe that trains (two steps of a tiny TextCNN), for tests of everything around a
# run; add data and output_dir.
TINY_TEXT_CNN = {
    "task": "text-classification",
    "tokenizer": {"level": "word", "max_length": 16},
    "model": {"type": "text_cnn", "embedding_dim": 8, "num_filters": 4, "filter_sizes": [2]},
    "training": {
        "max_steps": 2,
        "per_device_train_batch_size": 16,
        "logging_steps": 1,
        "eval_strategy": "steps",
        "eval_steps": 1,
        "report_to": [],
        "disable_tqdm": True,
    },
}
