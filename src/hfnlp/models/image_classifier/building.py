"""Building a new image classifier: its config from a recipe's model section, then the model with pretrained
backbone weights and a small new head. Part of hfnlp, not of the saved folder's (self-contained) code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from timm.models import get_pretrained_cfg

from hfnlp.errors import HfnlpError, RecipeError
from hfnlp.models.backbones import create_backbone
from hfnlp.models.image_classifier.configuration_image_classifier import ImageClassifierConfig
from hfnlp.models.image_classifier.modeling_image_classifier import ImageClassifierForImageClassification

# The config keys that come from the data's labels, never from the recipe.
SET_BY_DATA = ("num_labels", "id2label", "label2id")
# The pretrained_cfg keys that timm's resolve_data_config reads: what the image processor needs.
DATA_CONFIG_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def image_classifier_config(params: Mapping[str, Any], label_names: Sequence[str]) -> ImageClassifierConfig:
    """The config for a recipe's ``model`` section (``params``; a ``type`` key is ignored) and the data's labels,
    with ``pretrained_cfg`` (image size, interpolation, crop, normalisation) from the backbone's pretrained config.

    Raises:
        RecipeError: ``params`` sets what the labels set.
        HfnlpError: timm does not know the architecture.
        huggingface_hub.errors.StrictDataclassError, TypeError, ValueError: a value the config refuses.
    """
    params = {key: value for key, value in params.items() if key != "type"}
    clashing = [key for key in SET_BY_DATA if key in params]
    if clashing:
        raise RecipeError(f"model.{clashing[0]} is set from the data's labels; remove it from the recipe")
    config = ImageClassifierConfig(
        id2label=dict(enumerate(label_names)), label2id={name: i for i, name in enumerate(label_names)}, **params
    )
    config.pretrained_cfg = resolve_pretrained_cfg(config.architecture, config.image_size)
    return config


def resolve_pretrained_cfg(architecture: str, image_size: int | None = None) -> dict[str, Any]:
    """The data-config part of timm's pretrained config for ``architecture``, at ``image_size`` if given."""
    pretrained_cfg = get_pretrained_cfg(architecture)
    if pretrained_cfg is None:
        raise HfnlpError(f"unknown timm backbone {architecture!r} (see timm.list_models())")
    values = pretrained_cfg.to_dict()
    data_config = {key: values[key] for key in DATA_CONFIG_KEYS if values.get(key) is not None}
    if image_size:
        data_config["input_size"] = (data_config.get("input_size", (3,))[0], image_size, image_size)
    return data_config


def build_image_classifier(config: ImageClassifierConfig) -> ImageClassifierForImageClassification:
    """A new classifier: the backbone's pretrained weights (``config.weights`` file, or timm Hub / packaged
    weights when ``config.pretrained``) or timm's own initialisation, and a new head with small weights
    (normal, std ``config.initializer_range``; zero bias), so training starts from near-uniform predictions."""
    model = ImageClassifierForImageClassification(config)
    backbone = create_backbone(
        config.architecture,
        pretrained=config.pretrained,
        weights=config.weights,
        num_classes=config.num_labels,
        **(config.model_args or {}),
    )
    model.timm_model.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        for parameter in head_parameters(model):
            if parameter.ndim > 1:
                parameter.normal_(0.0, config.initializer_range)
            else:
                parameter.zero_()
    return model


def head_parameters(model: ImageClassifierForImageClassification) -> list[torch.nn.Parameter]:
    """The new classification head's parameters."""
    return list(model.timm_model.get_classifier().parameters())
