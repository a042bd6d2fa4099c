"""Serving tests: the session's tiny text classifier (tests/commands), a tiny untrained image classifier folder,
and an app with its token around each."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from tests.commands.conftest import model_folder  # noqa: F401  (the tiny fastText folder, as a fixture here too)

TOKEN = "test-token-0123456789"
IMAGE_LABELS = ["circle", "square", "triangle"]


@pytest.fixture(scope="session")
def image_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete hfnlp image-classifier folder (timm's test_resnet from scratch, 40×40 images, three labels)."""
    import torch

    from hfnlp.models.image_classifier.building import build_image_classifier, image_classifier_config
    from hfnlp.tasks.image_classification import image_processor_for

    folder = tmp_path_factory.mktemp("image-saved") / "model"
    config = image_classifier_config(
        {"architecture": "test_resnet", "pretrained": False, "image_size": 40}, IMAGE_LABELS
    )
    torch.manual_seed(0)
    model = build_image_classifier(config)
    model.save_pretrained(folder)
    image_processor_for(config).save_pretrained(folder)
    return folder


def png_base64(color: tuple[int, int, int] = (200, 30, 30), size: int = 40) -> str:
    """A plain-colour PNG image file, base64-encoded as clients send it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
