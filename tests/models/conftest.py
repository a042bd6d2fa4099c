"""Model tests: a tiny random captioner."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Small models on a shared 2-core machine: one thread avoids thread contention that makes each step 5× slower.
torch.set_num_threads(1)

from hfnlp.models.captioner import CaptionerConfig, ImageCaptioner  # noqa: E402

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
