"""Image classifier: a timm backbone with a new head, as ``TimmWrapperForImageClassification``.

hfnlp trains this class (its config carries the fine-tuning settings a recipe sets) and saves the final model as a
stock ``timm_wrapper`` folder that needs no code of its own (``hfnlp.models.image_classifier.timm_wrapper_config``);
the soft-target loss of mixup / cutmix is the trainer's. Self-contained all the same: folders saved by earlier hfnlp
versions carry this file for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only
transformers.
"""

from transformers import TimmWrapperForImageClassification

from .configuration_image_classifier import ImageClassifierConfig


class ImageClassifierForImageClassification(TimmWrapperForImageClassification):
    """A timm backbone with a ``config.num_labels``-way head, configured by :class:`ImageClassifierConfig`. Takes
    ``pixel_values`` prepared by the saved image processor."""

    config_class = ImageClassifierConfig


__all__ = ["ImageClassifierForImageClassification"]
