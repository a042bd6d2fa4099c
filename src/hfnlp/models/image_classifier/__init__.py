"""Image classifier: any timm backbone by name with a new classification head (``TimmWrapper`` based)."""

from hfnlp.models.image_classifier.configuration_image_classifier import ImageClassifierConfig
from hfnlp.models.image_classifier.modeling_image_classifier import ImageClassifierForImageClassification
from hfnlp.models.registry import ModelFamily

FAMILY = ModelFamily(
    name="image_classifier",
    config_class=ImageClassifierConfig,
    auto_classes={"AutoModelForImageClassification": ImageClassifierForImageClassification},
)

__all__ = ["FAMILY", "ImageClassifierConfig", "ImageClassifierForImageClassification"]
