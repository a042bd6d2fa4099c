"""``hfnlp train RECIPE [--set key=value ...] [--resume]``, or ``hfnlp train --data FILE``: the auto mode, which
profiles the data, trains the candidate recipes it suggests and keeps the best by validation score."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, NoReturn

from hfnlp.commands._checks import at_least_one
from hfnlp.commands._options import add_data_options, add_overrides_option, given_data_options, guess_data_arguments
from hfnlp.errors import HfnlpError

# An answer within minutes on a laptop, with room for a sequence model after the bags (measured on 2 cores:
# THUCNews' three candidates took 2.6 min; IMDb's two bags 4.2 min, after which a 5-minute budget skipped its
# TextCNN). A larger budget trains more.
DEFAULT_TIME_BUDGET_MIN = 10.0

# Options of the auto mode alone (besides the data-reading ones): option → attribute.
AUTO_OPTIONS = {
    "--task": "task",
    "--output-dir": "output_dir",
    "--seed": "seed",
    "--time-budget": "time_budget",
    "--candidates": "candidates",
    "--no-refit": "no_refit",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model from a YAML recipe, or (--data) choose one by training the data's candidates"
    )
    parser.add_argument("recipe", nargs="?", help="path to a YAML recipe (see recipes/); or give --data instead")
    add_overrides_option(
        parser,
        "override a recipe key, e.g. --set training.learning_rate=3e-4 (repeatable; with --data: every candidate's)",
    )
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
        "--limit-eval",
        type=int,
        metavar="N",
        help="evaluate and test on N random rows of the validation and test splits each (in <output_dir>-limit-*)",
    )
    parser.add_argument(
        "--overfit-batch",
        action="store_true",
        help="sanity check: train on one batch and fail unless the loss falls (in <output_dir>-overfit-batch)",
    )
    auto = parser.add_argument_group(
        "auto mode (--data FILE instead of a RECIPE)",
        "profile the data, train the candidate recipes it suggests, keep the best by validation score",
    )
    add_data_options(auto, required=False)
    auto.add_argument("--task", help="the task (default and only one for now: text-classification)")
    auto.add_argument("--output-dir", help="the output folder (default: runs/<data name>-auto)")
    auto.add_argument("--seed", type=int, help="the candidates' seed (default: 42)")
    auto.add_argument(
        "--time-budget",
        type=float,
        metavar="MINUTES",
        help="skip a candidate when the time spent plus the earlier candidates' mean would exceed it "
        f"(the first is always trained; default: {DEFAULT_TIME_BUDGET_MIN:g})",
    )
    auto.add_argument("--candidates", metavar="NAME,...", help="the candidates to train (default: all)")
    auto.add_argument(
        "--no-refit",
        action="store_const",
        const=True,
        help="keep the chosen candidate as trained, instead of retraining it on train + validation for its best "
        "epochs (the default, when the time budget holds it)",
    )
    parser.set_defaults(handler=train)


def train(args: argparse.Namespace) -> int:
    if args.recipe is not None and args.data is not None:
        _argument_error("argument --data: not allowed with argument recipe (give a RECIPE or --data FILE)")
    if args.recipe is None and args.data is None:
        _argument_error("the following arguments are required: recipe (or --data FILE to choose one from the data)")
    return train_auto(args) if args.data is not None else train_recipe(args)


def train_recipe(args: argparse.Namespace) -> int:
    """``hfnlp train RECIPE``."""
    auto_only = [*given_data_options(args), *(o for o, name in AUTO_OPTIONS.items() if getattr(args, name) is not None)]
    if auto_only:
        raise HfnlpError(
            f"{', '.join(auto_only)} go with --data FILE; with a RECIPE, change its keys with --set "
            "(e.g. --set output_dir=runs/x)"
        )
    # Imported here so that `hfnlp control` and `hfnlp dashboard` start without loading torch and transformers.
    from hfnlp.ops import session
    from hfnlp.tasks import load_recipe

    options = _train_options(args)
    recipe = load_recipe(args.recipe, args.overrides)
    summary = session.train(recipe, options)
    print_test(summary)
    run_dir = options.session_recipe(recipe).output_dir
    print(f"model saved to {run_dir}/model (wall time {summary['wall_time_s']:.0f} s)")
    return 0


def train_auto(args: argparse.Namespace) -> int:
    """``hfnlp train --data FILE``: see :mod:`hfnlp.ops.auto`."""
    if args.overfit_batch:
        raise HfnlpError("--overfit-batch checks one recipe: give a RECIPE (hfnlp recipe --data FILE writes one)")
    task = args.task or "text-classification"
    budget = args.time_budget
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise HfnlpError(f"--time-budget {budget:g}: give a positive number of minutes")
    names = [name.strip() for name in args.candidates.split(",") if name.strip()] if args.candidates else None
    if names == []:
        raise HfnlpError("--candidates: give candidate names separated by commas")

    from hfnlp.ops.auto import SUPPORTED_TASKS, AutoOptions, auto_output_dir, run_auto

    if task not in SUPPORTED_TASKS:  # before torch and the data are loaded
        raise HfnlpError(f"--task {task!r}: the auto mode supports {', '.join(SUPPORTED_TASKS)}")
    options = AutoOptions(
        data=args.data,
        data_options=guess_data_arguments(args),
        task=task,
        output_dir=args.output_dir,
        seed=42 if args.seed is None else args.seed,
        time_budget_s=(DEFAULT_TIME_BUDGET_MIN if budget is None else budget) * 60,
        candidates=names,
        overrides=list(args.overrides),
        train=_train_options(args),
        refit=not args.no_refit,
    )
    summary = run_auto(options)
    print_test(summary)
    print(f"model saved to {auto_output_dir(options)}/model")
    return 0


def _argument_error(message: str) -> NoReturn:
    """An argument error as argparse's own (exit 2, ``hfnlp train: error: ...``), on one line: the usage of every
    option would bury it."""
    print(f"hfnlp train: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _train_options(args: argparse.Namespace) -> Any:
    from hfnlp.ops import session

    at_least_one(args.limit_eval, "--limit-eval")
    return session.TrainOptions(
        resume=args.resume,
        dashboard_port=args.dashboard_port if args.dashboard_port is not None else 0 if args.dashboard else None,
        limit_train=args.limit_train,
        overfit_batch=args.overfit_batch,
        limit_eval=args.limit_eval,
    )


def print_test(summary: dict[str, Any]) -> None:
    """The test scores of a run's summary (``metrics.json``), timings left out."""
    test = summary["test"]
    shown = {k: round(v, 4) for k, v in test.items() if isinstance(v, float) and not k.endswith(("runtime", "second"))}
    limited = summary.get("limit_eval", {}).get("test")
    on = f" (--limit-eval: on {limited['rows']} of {limited['of']} test rows)" if limited else ""
    print(f"test{on}: {json.dumps(shown)}")
