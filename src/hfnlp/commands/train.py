"""``hfnlp train RECIPE [--set key=value ...] [--resume]``."""

from __future__ import annotations

import argparse
import json

from hfnlp.recipe import get_task, load_recipe
from hfnlp.training.engine import RunOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model from a YAML recipe")
    parser.add_argument("recipe", help="path to a YAML recipe (see recipes/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set training.learning_rate=3e-4 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    parser.set_defaults(handler=train)


def train(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, args.overrides)
    summary = get_task(recipe.task).run(recipe, RunOptions(resume=args.resume))
    test = summary["test"]
    shown = {k: round(v, 4) for k, v in test.items() if isinstance(v, float) and not k.endswith(("runtime", "second"))}
    print(f"test: {json.dumps(shown)}")
    print(f"model saved to {recipe.output_dir}/model (wall time {summary['wall_time_s']:.0f} s)")
    from hfnlp.hub import finish_model_folder

    finish_model_folder(recipe)  # model card in model/README.md; pushed when the recipe's hub section asks
    return 0
