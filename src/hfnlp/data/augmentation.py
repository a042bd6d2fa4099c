"""Image augmentation from a recipe: timm's training transform (random resized crop, flips, colour jitter,
RandAugment / AutoAugment / AugMix, random erasing) plus rotation and TrivialAugment from torchvision, and
timm's ``Mixup`` (mixup / cutmix) on whole batches.

Resizing, interpolation and normalisation always come from the backbone's data config (timm
``resolve_data_config`` of the model's ``pretrained_cfg``), the same one the saved image processor uses for
the evaluation transform (resize + centre crop), so training and inference see the same pixel statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from timm.data import Mixup, create_transform
from timm.data.mixup import mixup_target
from torchvision import transforms

from hfnlp.errors import RecipeError

TRIVIAL_AUGMENT = "trivial"


@dataclass
class AugmentationConfig:
    """The ``data.augmentation`` section of an image-classification recipe.

    ``enabled: false`` trains on the evaluation transform (resize + centre crop) with no mixing, the baseline
    to compare augmentation against.

    ``auto_augment`` takes timm's policy strings: ``"rand-m9-mstd0.5-inc1"`` (RandAugment), ``"original"`` or
    ``"v0"`` (AutoAugment), ``"augmix-m5-w4-d2"`` (AugMix), or ``"trivial"`` for torchvision's
    TrivialAugmentWide. As in timm, colour jitter is left out when an automatic policy is on.

    ``mixup`` and ``cutmix`` are the Beta-distribution alphas (0 = off); with both on, each batch uses cutmix
    with probability ``switch_prob``. Mixed batches have soft targets, which also carry the training
    section's ``label_smoothing_factor``.
    """

    enabled: bool = True
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 0.0
    color_jitter: float = 0.4
    auto_augment: str | None = None
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0
    switch_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("scale", "ratio"):
            low, high = _pair(getattr(self, name), f"data.augmentation.{name}")
            if not 0 < low <= high:
                raise RecipeError(f"data.augmentation.{name}: expected 0 < min <= max, got {[low, high]}")
        if self.scale[1] > 1:
            raise RecipeError(f"data.augmentation.scale: the largest crop is the whole image (1.0), got {self.scale}")
        for name in ("hflip", "vflip", "random_erasing", "mix_prob", "switch_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise RecipeError(f"data.augmentation.{name}: a probability in [0, 1], got {getattr(self, name)}")
        for name in ("rotation", "color_jitter", "mixup", "cutmix"):
            if getattr(self, name) < 0:
                raise RecipeError(f"data.augmentation.{name}: must be 0 or more, got {getattr(self, name)}")

    @property
    def mixes_batches(self) -> bool:
        """Whether mixup or cutmix is on."""
        return self.enabled and (self.mixup > 0 or self.cutmix > 0)


def _pair(value: list[float], where: str) -> tuple[float, float]:
    if len(value) != 2:
        raise RecipeError(f"{where}: expected [min, max], got {value}")
    return float(value[0]), float(value[1])


def build_train_transform(
    config: AugmentationConfig, data_config: dict[str, Any], eval_transform: Callable[[Image.Image], torch.Tensor]
) -> Callable[[Image.Image], torch.Tensor]:
    """The per-image training transform: ``eval_transform`` when augmentation is off, else timm's training
    transform for ``data_config`` (input size, interpolation, mean, std) with rotation and TrivialAugment
    added."""
    if not config.enabled:
        return eval_transform
    trivial = config.auto_augment == TRIVIAL_AUGMENT
    primary, secondary, final = create_transform(
        input_size=data_config["input_size"],
        is_training=True,
        scale=tuple(config.scale),
        ratio=tuple(config.ratio),
        hflip=config.hflip,
        vflip=config.vflip,
        color_jitter=None if trivial else config.color_jitter or None,
        auto_augment=None if trivial else config.auto_augment,
        interpolation=data_config["interpolation"],
        mean=data_config["mean"],
        std=data_config["std"],
        re_prob=config.random_erasing,
        separate=True,
    )
    steps = list(primary.transforms)
    if config.rotation:
        fill = [round(255 * m) for m in data_config["mean"]]
        steps.append(
            transforms.RandomRotation(config.rotation, interpolation=_pil_interpolation(data_config), fill=fill)
        )
    if trivial:
        steps.append(transforms.TrivialAugmentWide(interpolation=_pil_interpolation(data_config)))
    return transforms.Compose([*steps, *secondary.transforms, *final.transforms])


def _pil_interpolation(data_config: dict[str, Any]) -> transforms.InterpolationMode:
    name = data_config["interpolation"]
    return (
        transforms.InterpolationMode(name)
        if name in ("bilinear", "bicubic", "nearest")
        else transforms.InterpolationMode.BILINEAR
    )


def build_mixup(config: AugmentationConfig, num_labels: int, label_smoothing: float = 0.0) -> Mixup | None:
    """timm's ``Mixup`` for the recipe's mixup / cutmix alphas, or ``None`` when neither is on."""
    if not config.mixes_batches:
        return None
    return Mixup(
        mixup_alpha=config.mixup,
        cutmix_alpha=config.cutmix,
        prob=config.mix_prob,
        switch_prob=config.switch_prob,
        mode="batch",
        label_smoothing=label_smoothing,
        num_classes=num_labels,
    )


def mix_batch(mixup: Mixup, pixel_values: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix a batch; return the mixed images and their soft targets (batch, num_labels).

    timm mixes each image with the batch's reverse, which needs an even size: the last image of an odd batch
    is kept as it is, with a one-hot (smoothed) target.
    """
    even = len(labels) - len(labels) % 2
    if even == len(labels):
        return mixup(pixel_values.clone(), labels)
    tail = mixup_target(labels[even:], mixup.num_classes, smoothing=mixup.label_smoothing)
    if even == 0:
        return pixel_values, tail
    mixed, head = mixup(pixel_values[:even].clone(), labels[:even])
    return torch.cat([mixed, pixel_values[even:]]), torch.cat([head, tail])
