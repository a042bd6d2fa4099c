"""Image classifier: any timm backbone by name with a new classification head (``TimmWrapper`` based)."""

from hfnlp.models.image_classifier.building import build_image_classifier, head_parameters, image_classifier_config
from hfnlp.models.image_classifier.configuration_image_classifier import ImageClassifierConfig
from hfnlp.models.image_classifier.modeling_image_classifier import ImageClassifierForImageClassification
from hfnlp.models.registry import ModelFamily

FAMILY = ModelFamily(
    name="image_classifier",
    auto_classes={"AutoModelForImageClassification": ImageClassifierForImageClassification},
    builder=build_image_classifier,
)

__all__ = [
    "FAMILY",
    "ImageClassifierConfig",
    "ImageClassifierForImageClassification",
    "head_parameters",
    "image_classifier_config",
]
