"""``hfnlp sweep RECIPE --grid key=v1,v2 [--grid ...] [--set key=value ...]``: train every combination, compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from hfnlp.commands._options import add_overrides_option
from hfnlp.errors import HfnlpError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="train every combination of a grid and compare the runs")
    parser.add_argument("recipe", help="path to a YAML recipe")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="values to try for one recipe key, e.g. --grid training.per_device_train_batch_size=64,256 (repeatable)",
    )
    add_overrides_option(parser, "override for every run")
    parser.add_argument("--output-dir", help="the sweep folder (default: the recipe's output_dir + '-sweep')")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, as separate processes (default: 1)")
    parser.set_defaults(handler=sweep)


def sweep(args: argparse.Namespace) -> int:
    # Imported here so that `hfnlp control` and `hfnlp dashboard` start without loading torch and transformers.
    from hfnlp.ops.sweep import (
        COMPARISON_CSV,
        COMPARISON_MD,
        LOSS_CURVES,
        collect,
        comparison_rows,
        parse_grid,
        plan_sweep,
        plot_sweep_curves,
        run_sweep,
        write_comparison,
    )
    from hfnlp.tasks import load_recipe

    if args.jobs < 1:
        raise HfnlpError(f"--jobs must be 1 or more, got {args.jobs}")
    grid = parse_grid(args.grid)
    sweep_dir = Path(args.output_dir or f"{load_recipe(args.recipe, args.overrides).output_dir}-sweep")
    runs = plan_sweep(args.recipe, grid, args.overrides, sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    print(f"sweep: {len(runs)} runs in {sweep_dir}", flush=True)
    run_sweep(args.recipe, runs, args.overrides, jobs=args.jobs)
    collect(runs)
    table = write_comparison(comparison_rows(runs), sweep_dir)
    plot_sweep_curves(runs, sweep_dir / LOSS_CURVES)
    print(table)
    print(f"table: {sweep_dir / COMPARISON_MD} and {COMPARISON_CSV}; curves: {sweep_dir / LOSS_CURVES}")
    return 0 if all(run.status == "done" for run in runs) else 1
