"""Image classifier configuration: a timm backbone by name with a new head, plus how to fine-tune it.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code``
loading, where hfnlp is not installed, so it imports only transformers and huggingface_hub (no
``from __future__ import annotations``: ``@strict`` checks only real annotations).
"""

from huggingface_hub.dataclasses import strict
from transformers import TimmWrapperConfig
from transformers.utils.type_validators import interval


@strict(accept_kwargs=True)
class ImageClassifierConfig(TimmWrapperConfig):
    r"""Configuration of :class:`ImageClassifierForImageClassification`: any timm ``architecture`` with a new
    classification head of ``num_labels`` outputs, as a ``TimmWrapperConfig`` (so ``pretrained_cfg`` in
    ``config.json`` holds the image size, interpolation, crop and normalisation that the saved
    ``TimmWrapperImageProcessor`` applies).

    Labels are set with ``num_labels`` or ``id2label`` / ``label2id``, as for any transformers config.

    Args:
        architecture: timm model name, e.g. ``"tf_efficientnet_lite0"`` or ``"resnet18"``.
        model_args: Extra ``timm.create_model`` keyword arguments, e.g. ``{"drop_rate": 0.2}``.
        image_size: Square input resolution for training and inference; ``None`` keeps the backbone's
            pretrained input size.
        pretrained: Start from the backbone's pretrained weights (timm Hub, or packaged weights offline)
            rather than from scratch, when a new model is built (``FAMILY.build_model``).
        weights: A local ``.safetensors`` / ``.pth`` / ``.bin`` file with the backbone's weights; takes the
            place of ``pretrained``.
        head_lr_multiplier: Learning rate of the new head relative to the backbone's.
        freeze_backbone_epochs: Train only the head for this many epochs, then unfreeze the backbone.
        layer_decay: Layer-wise learning-rate decay (e.g. ``0.75``: each layer below the top learns 0.75×
            as fast as the one above); ``None`` gives every backbone layer the same rate.
    """

    model_type = "hfnlp_image_classifier"

    # Redeclared from TimmWrapperConfig so that recipes may set them (only a family's own fields are recipe keys).
    architecture: str = "tf_efficientnet_lite0"
    model_args: dict | None = None
    image_size: int | None = None
    pretrained: bool = True
    weights: str | None = None
    # float | int: YAML reads `head_lr_multiplier: 10` as an int
    head_lr_multiplier: float | int = interval(min=0, exclude_min=True)(default=10.0)
    freeze_backbone_epochs: int = interval(min=0)(default=0)
    layer_decay: float | int | None = None

    def validate_image_size(self) -> None:
        """A backbone needs a few pixels to downsample."""
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {self.image_size}")

    def validate_layer_decay(self) -> None:
        """A decay factor: each layer learns at most as fast as the one above."""
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], got {self.layer_decay}")

    def __post_init__(self, **kwargs) -> None:
        # Written to config.json so that AutoImageProcessor (and pipeline) find the processor, which reads its
        # settings from ``pretrained_cfg`` in the same file.
        kwargs.setdefault("image_processor_type", "TimmWrapperImageProcessor")
        super().__post_init__(**kwargs)


__all__ = ["ImageClassifierConfig"]
