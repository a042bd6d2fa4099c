"""Shared fixtures for the image-captioning tests: a tiny random captioner and one trained synthetic run."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Small models on a shared 2-core machine: one thread avoids thread contention that makes each step 5× slower.
torch.set_num_threads(1)

from hfnlp.models.captioner import CaptionerConfig, ImageCaptioner  # noqa: E402
from hfnlp.recipe import get_task, recipe_from_dict  # noqa: E402
from hfnlp.training.engine import RunOptions  # noqa: E402

VOCAB = 12


def tiny_config(**overrides) -> CaptionerConfig:
    """A captioner small enough to build and run in milliseconds (EfficientNet-Lite0 up to its second stage)."""
    settings = dict(
        vocab_size=VOCAB,
        encoder_name="tf_efficientnet_lite0",
        encoder_out_index=1,
        encoder_pretrained=False,
        embedding_dim=8,
        hidden_size=16,
        attention_dim=8,
        dropout=0.0,
    )
    return CaptionerConfig(**{**settings, **overrides})


@pytest.fixture
def tiny_model() -> ImageCaptioner:
    torch.manual_seed(0)
    return ImageCaptioner(tiny_config()).eval()


def synthetic_recipe(output_dir: str, **data) -> dict:
    """The small synthetic-scenes setting the learning test uses (a cut-down caption-quickstart.yaml)."""
    return {
        "task": "image-captioning",
        "output_dir": output_dir,
        "data": {
            "builtin": "synthetic_scenes",
            "builtin_size": 600,
            "image_size": 64,
            "validation_ratio": 0.1,
            "test_ratio": 0.15,
            "num_beams": 3,
            **data,
        },
        "tokenizer": {"min_frequency": 1, "max_length": 16},
        "model": {
            "type": "captioner",
            "encoder_name": "tf_efficientnet_lite0",
            "encoder_out_index": 2,
            "encoder_training": "frozen",
            "embedding_dim": 32,
            "hidden_size": 256,
            "attention_dim": 64,
            "dropout": 0.1,
        },
        "training": {
            "num_train_epochs": 4,
            "per_device_train_batch_size": 32,
            "per_device_eval_batch_size": 256,
            "learning_rate": 0.005,
            "eval_strategy": "no",
            "logging_steps": 10,
            "report_to": [],
            "disable_tqdm": True,
            "save_total_limit": 1,
        },
    }


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Train once on held-in synthetic scenes; ``(run folder, metrics summary)``."""
    folder = tmp_path_factory.mktemp("caption-run") / "run"
    recipe = recipe_from_dict(synthetic_recipe(str(folder)))
    summary = get_task("image-captioning").run(recipe, RunOptions())
    return folder, summary
