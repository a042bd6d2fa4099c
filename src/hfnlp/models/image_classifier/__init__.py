"""Image classifier: any timm backbone by name with a new classification head (``TimmWrapper`` based), saved as a
stock ``timm_wrapper`` folder."""

from hfnlp.models.image_classifier.building import build_image_classifier, head_parameters, image_classifier_config
from hfnlp.models.image_classifier.configuration_image_classifier import ImageClassifierConfig
from hfnlp.models.image_classifier.folder import CODE_FILES, timm_wrapper_config
from hfnlp.models.image_classifier.modeling_image_classifier import ImageClassifierForImageClassification
from hfnlp.models.registry import ModelFamily

FAMILY = ModelFamily(
    name="image_classifier",
    auto_classes={"AutoModelForImageClassification": ImageClassifierForImageClassification},
    builder=build_image_classifier,
)

__all__ = [
    "CODE_FILES",
    "FAMILY",
    "ImageClassifierConfig",
    "ImageClassifierForImageClassification",
    "head_parameters",
    "image_classifier_config",
    "timm_wrapper_config",
]
