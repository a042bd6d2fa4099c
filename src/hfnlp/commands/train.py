"""``hfnlp train RECIPE [--set key=value ...] [--resume]``."""

from __future__ import annotations

import argparse
import json

from hfnlp.commands._options import add_overrides_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model from a YAML recipe")
    parser.add_argument("recipe", help="path to a YAML recipe (see recipes/)")
    add_overrides_option(parser, "override a recipe key, e.g. --set training.learning_rate=3e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    parser.add_argument(
        "--dashboard", action="store_true", help="serve the live dashboard on 127.0.0.1 (URL with token printed)"
    )
    parser.add_argument(
        "--dashboard-port", type=int, help="serve the dashboard on this port (with --dashboard alone: any free port)"
    )
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
    from hfnlp.ops import session
    from hfnlp.tasks import load_recipe

    options = session.TrainOptions(
        resume=args.resume,
        dashboard_port=args.dashboard_port if args.dashboard_port is not None else 0 if args.dashboard else None,
        limit_train=args.limit_train,
        overfit_batch=args.overfit_batch,
    )
    recipe = load_recipe(args.recipe, args.overrides)
    summary = session.train(recipe, options)
    test = summary["test"]
    shown = {k: round(v, 4) for k, v in test.items() if isinstance(v, float) and not k.endswith(("runtime", "second"))}
    print(f"test: {json.dumps(shown)}")
    run_dir = options.session_recipe(recipe).output_dir
    print(f"model saved to {run_dir}/model (wall time {summary['wall_time_s']:.0f} s)")
    return 0
