"""``hfnlp augment-preview RECIPE --n 16 --out grid.png``: a grid of augmented training images, as the model sees
them (after the recipe's augmentation, mixup / cutmix included, shown un-normalised)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from hfnlp.errors import HfnlpError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("augment-preview", help="write a grid of augmented training images for a recipe")
    parser.add_argument("recipe", help="an image-classification recipe")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key"
    )
    parser.add_argument("--n", type=int, default=16, help="how many augmented images (default: 16)")
    parser.add_argument("--out", default="augment-preview.png", help="PNG file to write (default: augment-preview.png)")
    parser.add_argument("--seed", type=int, help="sampling and augmentation seed (default: the recipe's)")
    parser.set_defaults(handler=augment_preview)


def augment_preview(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from transformers import set_seed

    from hfnlp.data.augmentation import build_mixup, build_train_transform, mix_batch
    from hfnlp.data.image_folders import TransformedImages, load_image_classification
    from hfnlp.recipe import load_recipe
    from hfnlp.tasks.image_classification import TASK, image_classifier_config, image_processor_for

    if args.n < 1:
        raise HfnlpError("--n must be at least 1")
    recipe = load_recipe(args.recipe, args.overrides)
    if recipe.task != TASK:
        raise HfnlpError(f"{args.recipe}: augment-preview needs a {TASK} recipe, not {recipe.task}")
    seed = recipe.seed if args.seed is None else args.seed
    set_seed(seed)
    data = load_image_classification(recipe.data, seed=recipe.seed, validate=False)
    train = data.splits["train"]
    processor = image_processor_for(image_classifier_config(recipe.model, data.label_names))
    augmentation = recipe.data.augmentation
    transform = build_train_transform(augmentation, processor.data_config, processor.val_transforms)
    rows = np.random.default_rng(seed).choice(len(train), size=args.n, replace=args.n > len(train))
    examples = TransformedImages(train.select(rows), transform)
    pixel_values = torch.stack([examples[i]["pixel_values"] for i in range(len(examples))])
    labels = torch.tensor(train.select(rows)["label"])
    targets = torch.nn.functional.one_hot(labels, len(data.label_names)).float()
    mixup = build_mixup(augmentation, len(data.label_names), recipe.training.label_smoothing_factor)
    if mixup is not None:
        pixel_values, targets = mix_batch(mixup, pixel_values, labels)
    mean = torch.tensor(processor.data_config["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(processor.data_config["std"]).view(1, -1, 1, 1)
    images = (pixel_values * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    titles = [_title(target, data.label_names) for target in targets]
    save_grid(images, titles, Path(args.out))
    print(f"wrote {args.n} augmented training images to {args.out}")
    return 0


def _title(target: object, label_names: list[str]) -> str:
    """The label, or the two largest shares of a mixed target (``rose 0.62 + tulip 0.38``)."""
    values, indices = target.topk(min(2, len(label_names)))
    if values[0] > 0.9:
        return label_names[int(indices[0])]
    return " + ".join(f"{label_names[int(i)]} {float(v):.2f}" for v, i in zip(values, indices, strict=True))


def save_grid(images: object, titles: list[str], path: Path) -> None:
    """Save ``images`` (N, H, W, 3 floats in [0, 1]) as a titled grid PNG."""
    from hfnlp.training.reports import plt  # the headless (Agg) matplotlib set up for reports

    columns = math.ceil(math.sqrt(len(titles)))
    rows = math.ceil(len(titles) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(titles):
            axis.imshow(images[index])
            axis.set_title(titles[index], fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
