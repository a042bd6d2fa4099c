"""Augmentation: transforms follow the backbone's data config, recipe validation, mixup / cutmix targets, and
``hfnlp augment-preview`` writing a grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hfnlp.cli import main
from hfnlp.data.augmentation import AugmentationConfig, build_mixup, build_train_transform, mix_batch
from hfnlp.errors import RecipeError
from hfnlp.models.image_classifier import image_classifier_config
from hfnlp.tasks.image_classification import image_processor_for
from tests.conftest import write_image_recipe


@pytest.fixture(scope="module")
def processor():
    config = image_classifier_config(
        {"type": "image_classifier", "architecture": "test_resnet", "image_size": 40}, ["a"]
    )
    return image_processor_for(config)


def photo(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (60, 90, 3), dtype=np.uint8))


def step_types(transform) -> list[str]:
    return [type(step).__name__ for step in transform.transforms]


def test_train_transform_uses_the_backbone_size_and_normalisation(processor):
    assert processor.data_config["input_size"] == (3, 40, 40)
    config = AugmentationConfig(rotation=20, random_erasing=0.5, color_jitter=0.3)
    transform = build_train_transform(config, processor.data_config, processor.val_transforms)
    names = step_types(transform)
    for expected in ("RandomResizedCropAndInterpolation", "RandomHorizontalFlip", "RandomRotation", "ColorJitter"):
        assert expected in names
    assert names[-2:] == ["Normalize", "RandomErasing"]
    normalize = transform.transforms[names.index("Normalize")]
    assert normalize.mean.tolist() == list(processor.data_config["mean"])
    assert transform(photo()).shape == (3, 40, 40)
    # evaluation: resize + centre crop, deterministic
    assert step_types(processor.val_transforms)[:2] == ["Resize", "CenterCrop"]
    assert torch.equal(processor.val_transforms(photo()), processor.val_transforms(photo()))


def test_disabled_augmentation_trains_on_the_evaluation_transform(processor):
    transform = build_train_transform(
        AugmentationConfig(enabled=False), processor.data_config, processor.val_transforms
    )
    assert transform is processor.val_transforms
    assert build_mixup(AugmentationConfig(enabled=False, mixup=0.8), num_labels=3) is None


@pytest.mark.parametrize(
    ("policy", "expected", "absent"),
    [("rand-m9-mstd0.5", "RandAugment", "ColorJitter"), ("trivial", "TrivialAugmentWide", "ColorJitter")],
)
def test_automatic_policies_replace_colour_jitter(processor, policy, expected, absent):
    transform = build_train_transform(
        AugmentationConfig(auto_augment=policy), processor.data_config, processor.val_transforms
    )
    assert expected in step_types(transform) and absent not in step_types(transform)
    assert transform(photo(1)).shape == (3, 40, 40)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"scale": [0.5, 2.0]}, "largest crop is the whole image"),
        ({"ratio": [1.0]}, r"expected \[min, max\]"),
        ({"hflip": 1.5}, r"a probability in \[0, 1\]"),
        ({"mixup": -1.0}, "must be 0 or more"),
    ],
)
def test_bad_augmentation_values_are_refused(values, message):
    with pytest.raises(RecipeError, match=message):
        AugmentationConfig(**values)


def test_mistyped_augmentation_key_gets_a_suggestion(shapes_dir, tmp_path, capsys):
    recipe = write_image_recipe(
        tmp_path / "recipe.yaml", {"train_file": str(shapes_dir), "augmentation": {"mixpu": 0.2}}
    )
    assert main(["augment-preview", str(recipe)]) == 2  # a RecipeError: one clear line, status 2
    assert "did you mean 'data.augmentation.mixup'" in capsys.readouterr().err


@pytest.mark.parametrize("batch", [8, 7, 1])
def test_mix_batch_gives_soft_targets_for_even_and_odd_batches(batch):
    torch.manual_seed(0)
    np.random.seed(0)
    mixup = build_mixup(AugmentationConfig(mixup=0.4, cutmix=1.0), num_labels=3, label_smoothing=0.1)
    images, labels = torch.randn(batch, 3, 8, 8), torch.arange(batch) % 3
    mixed, targets = mix_batch(mixup, images.clone(), labels)
    assert mixed.shape == images.shape and targets.shape == (batch, 3)
    assert torch.allclose(targets.sum(dim=1), torch.ones(batch))
    if batch % 2:  # the odd one out is kept as it is, with a smoothed one-hot target
        assert torch.equal(mixed[-1], images[-1])
        assert targets[-1].argmax() == labels[-1] and targets[-1].max() == pytest.approx(1 - 0.1 + 0.1 / 3)
    if batch > 1:
        assert not torch.equal(mixed[:2], images[:2])


def test_augment_preview_writes_a_grid(shapes_dir, tmp_path, capsys):
    recipe = write_image_recipe(
        tmp_path / "recipe.yaml",
        {"train_file": str(shapes_dir), "augmentation": {"rotation": 15, "auto_augment": "trivial", "cutmix": 1.0}},
    )
    out = tmp_path / "preview" / "grid.png"
    assert main(["augment-preview", str(recipe), "--n", "6", "--out", str(out)]) == 0
    assert "wrote 6 augmented training images" in capsys.readouterr().out
    with Image.open(out) as grid:
        assert grid.format == "PNG" and grid.width > 300 and grid.height > 200
        pixels = np.asarray(grid.convert("RGB"))
    assert pixels.std() > 10  # images were drawn, not an empty canvas
