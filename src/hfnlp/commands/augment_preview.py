"""``hfnlp augment-preview RECIPE --n 16 --out grid.png``: a grid of augmented training images, as the model sees
them (after the recipe's augmentation, mixup / cutmix included, shown un-normalised)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from hfnlp.commands._checks import at_least_one, check_output_dir, check_output_file
from hfnlp.commands._options import add_overrides_option
from hfnlp.errors import HfnlpError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("augment-preview", help="write a grid of augmented training images for a recipe")
    parser.add_argument("recipe", help="an image-classification recipe")
    add_overrides_option(parser, "override a recipe key")
    parser.add_argument("--n", type=int, default=16, help="how many augmented images (default: 16)")
    parser.add_argument("--out", default="augment-preview.png", help="PNG file to write (default: augment-preview.png)")
    parser.add_argument("--seed", type=int, help="sampling and augmentation seed (default: the recipe's)")
    parser.set_defaults(handler=augment_preview)


def augment_preview(args: argparse.Namespace) -> int:
    import torch

    from hfnlp.tasks import get_task, load_recipe

    at_least_one(args.n, "--n")
    out = Path(args.out)
    check_output_dir(out.parent, "--out")  # before the images are read and augmented; its folder is created
    out.parent.mkdir(parents=True, exist_ok=True)
    check_output_file(out, "--out")
    recipe = load_recipe(args.recipe, args.overrides)
    task = get_task(recipe.task)
    if not hasattr(task, "augmented_examples"):
        raise HfnlpError(f"{args.recipe}: {recipe.task} has no training augmentation to preview")
    seed = recipe.seed if args.seed is None else args.seed
    pixel_values, targets, label_names, data_config = task.augmented_examples(recipe, args.n, seed)
    mean = torch.tensor(data_config["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(data_config["std"]).view(1, -1, 1, 1)
    images = (pixel_values * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    titles = [_title(target, label_names) for target in targets]
    save_grid(images, titles, out)
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
    figure.savefig(path, dpi=100)
    plt.close(figure)
