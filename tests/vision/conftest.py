"""Vision test set-up: a generated image folder with the clutter real downloads have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hfnlp.data.synthetic_images import write_shapes_folder
from tests.conftest import one_torch_thread

QUIET_TRAINING = {"report_to": [], "disable_tqdm": True, "logging_steps": 5}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``circle/``, ``square/``, ``triangle/`` with 40 JPEGs each, plus a ``.DS_Store`` and a ``notes.txt``."""
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
