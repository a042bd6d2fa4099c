"""ImageCaptioner: a timm CNN encoder and an LSTM decoder with soft attention (Show, Attend and Tell)."""

from hfnlp.models.captioner.configuration_captioner import CaptionerConfig
from hfnlp.models.captioner.modeling_captioner import CaptionerOutput, CaptionGenerationOutput, ImageCaptioner
from hfnlp.models.registry import ModelFamily

FAMILY = ModelFamily(
    name="captioner",
    config_class=CaptionerConfig,
    auto_classes={"AutoModelForImageTextToText": ImageCaptioner},
)

__all__ = ["FAMILY", "CaptionGenerationOutput", "CaptionerConfig", "CaptionerOutput", "ImageCaptioner"]
