"""What makes the image classifier's final model folder a stock transformers ``timm_wrapper`` folder: a
``config.json`` of model type ``timm_wrapper`` (no ``auto_map``) and none of hfnlp's code files, so that
``AutoModelForImageClassification.from_pretrained(folder)`` and ``pipeline("image-classification", model=folder)``
load it anywhere, without ``trust_remote_code``. Part of hfnlp, not of the saved folder.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

from hfnlp.models.image_classifier.configuration_image_classifier import ImageClassifierConfig
from hfnlp.models.image_classifier.modeling_image_classifier import ImageClassifierForImageClassification

# The code files save_pretrained copies next to the weights for remote code (auto_map): a stock folder needs none.
CODE_FILES = tuple(
    Path(inspect.getfile(cls)).name for cls in (ImageClassifierConfig, ImageClassifierForImageClassification)
)


def timm_wrapper_config(config: ImageClassifierConfig) -> TimmWrapperConfig:
    """The stock ``TimmWrapperConfig`` of the same model: architecture, labels, the ``pretrained_cfg`` that the
    image processor reads, and hfnlp's own fields (how the model was made and fine-tuned) as plain attributes, which
    transformers keeps without needing any code. The weights fit it as they are:
    ``ImageClassifierForImageClassification`` is a ``TimmWrapperForImageClassification`` with the same tensors."""
    fields = config.to_dict()
    for name in ("model_type", "auto_map", "architectures", "transformers_version"):
        fields.pop(name, None)
    stock = TimmWrapperConfig.from_dict(fields)
    stock.architectures = [TimmWrapperForImageClassification.__name__]
    return stock
