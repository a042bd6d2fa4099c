"""Building a new captioner: the model as its config describes it, with pretrained encoder weights if it names
them. Part of hfnlp, not of the saved folder's (self-contained) code."""

from __future__ import annotations

import logging

from hfnlp.errors import HfnlpError
from hfnlp.models.backbones import create_backbone
from hfnlp.models.captioner.configuration_captioner import CaptionerConfig
from hfnlp.models.captioner.modeling_captioner import ImageCaptioner

logger = logging.getLogger(__name__)


def build_captioner(config: CaptionerConfig) -> ImageCaptioner:
    """A new captioner; its encoder starts from ``config.encoder_weights`` or, with ``config.encoder_pretrained``,
    ImageNet weights (timm Hub, or packaged weights offline)."""
    model = ImageCaptioner(config)
    if config.encoder_pretrained or config.encoder_weights:
        load_encoder_weights(model)
    return model


def load_encoder_weights(model: ImageCaptioner) -> None:
    """Copy ImageNet (or ``encoder_weights`` file) weights into the captioner's encoder, via hfnlp's backbones."""
    config = model.config
    backbone = create_backbone(
        config.encoder_name, pretrained=config.encoder_pretrained, weights=config.encoder_weights
    )
    missing, _ = model.encoder.load_state_dict(backbone.state_dict(), strict=False)
    if missing:
        raise HfnlpError(f"pretrained weights for {config.encoder_name!r} lack encoder tensors: {missing[:5]}")
    logger.info("encoder %s initialised with pretrained weights", config.encoder_name)
