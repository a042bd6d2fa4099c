"""Image classifier: a timm backbone with a new head, as ``TimmWrapperForImageClassification``.

Self-contained on purpose: transformers copies this file and ``configuration_image_classifier.py`` next to the
weights for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only torch and
transformers (and timm, through transformers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import TimmWrapperForImageClassification

from .configuration_image_classifier import ImageClassifierConfig


def soft_target_cross_entropy(labels: torch.Tensor, logits: torch.Tensor, config: object, **kwargs) -> torch.Tensor:
    """Cross-entropy against class indices (batch,) or class probabilities (batch, num_labels).

    Probabilities are what mixup / cutmix (and label smoothing folded into them) produce.
    """
    return nn.functional.cross_entropy(logits, labels.to(logits.device))


class ImageClassifierForImageClassification(TimmWrapperForImageClassification):
    """A timm backbone with a ``config.num_labels``-way head. Takes ``pixel_values`` prepared by the saved
    image processor; ``labels`` may be class indices or, for mixup / cutmix, class probabilities."""

    config_class = ImageClassifierConfig

    @property
    def loss_function(self) -> Callable[..., torch.Tensor]:
        """Soft-target-aware cross-entropy, instead of transformers' choice by label dtype (which would treat
        probabilities as multi-label targets)."""
        return soft_target_cross_entropy


__all__ = ["ImageClassifierForImageClassification"]
