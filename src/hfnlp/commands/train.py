"""``hfnlp train RECIPE [--set key=value ...] [--resume]``."""

from __future__ import annotations

import argparse
import json

from hfnlp.recipe import get_task, load_recipe


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
    parser.add_argument(
        "--dashboard", action="store_true", help="serve the live dashboard on 127.0.0.1 (URL with token printed)"
    )
    parser.add_argument("--dashboard-port", type=int, default=0, help="dashboard port (default: any free port)")
    parser.add_argument(
        "--limit-train",
        metavar="1batch|FRACTION|N",
        help="train on a fixed random subset: one batch, a fraction such as 0.5, or N rows (in <output_dir>-limit-*)",
    )
    parser.add_argument(
        "--overfit-batch",
        action="store_true",
        help="sanity check: train on one batch and fail unless the loss falls (in <output_dir>-overfit-batch)",
    )
    parser.set_defaults(handler=train)


def train(args: argparse.Namespace) -> int:
    # Imported here so that `hfnlp control` and `hfnlp dashboard` start without loading torch and transformers.
    from hfnlp.training.control_room import ControlRoom
    from hfnlp.training.engine import RunOptions

    recipe = load_recipe(args.recipe, args.overrides)
    dashboard_port = args.dashboard_port if args.dashboard else None
    room = ControlRoom(
        recipe,
        resume=args.resume,
        dashboard_port=dashboard_port,
        limit_train=args.limit_train,
        overfit_batch=args.overfit_batch,
    )
    recipe = room.recipe
    try:
        summary = get_task(recipe.task).run(recipe, RunOptions(resume=args.resume, callbacks=room.callbacks))
    except BaseException as error:
        room.crashed(error)
        raise
    room.finished(summary)
    test = summary["test"]
    shown = {k: round(v, 4) for k, v in test.items() if isinstance(v, float) and not k.endswith(("runtime", "second"))}
    print(f"test: {json.dumps(shown)}")
    print(f"model saved to {recipe.output_dir}/model (wall time {summary['wall_time_s']:.0f} s)")
    from accelerate import PartialState

    from hfnlp.hub import finish_model_folder

    if PartialState().is_main_process:  # under `accelerate launch`, the card and push happen once
        finish_model_folder(recipe)  # model card in model/README.md; pushed when the recipe's hub section asks
    return 0
