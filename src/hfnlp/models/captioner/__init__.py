"""ImageCaptioner: a timm CNN encoder and an LSTM decoder with soft attention (Show, Attend and Tell)."""

from hfnlp.models.captioner.building import build_captioner
from hfnlp.models.captioner.configuration_captioner import CaptionerConfig
from hfnlp.models.captioner.generation_captioner import CaptionGenerationOutput
from hfnlp.models.captioner.modeling_captioner import CaptionerOutput, ImageCaptioner
from hfnlp.models.registry import ModelFamily

FAMILY = ModelFamily(
    name="captioner",
    auto_classes={"AutoModelForImageTextToText": ImageCaptioner},
    builder=build_captioner,
)

__all__ = ["FAMILY", "CaptionGenerationOutput", "CaptionerConfig", "CaptionerOutput", "ImageCaptioner"]
