"""``hfnlp control RUN_DIR [--lr X] [--epochs N] [--stop-after-epoch] [--checkpoint-now]``: steer a running training.

Without an action, shows the run's progress and its control log.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from hfnlp.errors import HfnlpError
from hfnlp.ops.control.channel import MAX_LR_FACTOR, ControlChannel, ControlCommand


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("control", help="change a running training: learning rate, epochs, stop, checkpoint")
    parser.add_argument("run_dir", help="the run folder (the recipe's output_dir)")
    parser.add_argument(
        "--lr",
        type=float,
        help=f"new base learning rate (the schedule is rescaled to it; at most {MAX_LR_FACTOR:g} × the recipe's)",
    )
    parser.add_argument("--epochs", type=float, help="new total number of epochs (longer or shorter)")
    parser.add_argument("--stop-after-epoch", action="store_true", help="end cleanly after the current epoch")
    parser.add_argument("--checkpoint-now", action="store_true", help="save a checkpoint after the current step")
    parser.add_argument("--wait", type=float, default=120.0, metavar="SECONDS", help="how long to wait for the run")
    parser.set_defaults(handler=control, loads_libraries=False)


def control(args: argparse.Namespace) -> int:
    channel = ControlChannel(args.run_dir)
    channel.require_run_folder()
    request = {
        "learning_rate": args.lr,
        "num_train_epochs": args.epochs,
        "stop_after_epoch": args.stop_after_epoch,
        "checkpoint_now": args.checkpoint_now,
    }
    # `is`, not `in`: --lr 0 is a (refused) request, not a missing one (0 == False)
    request = {key: value for key, value in request.items() if value is not None and value is not False}
    if not request:
        status = channel.status()
        if "global_step" not in status:
            raise HfnlpError(f"{args.run_dir}: no live status (not an hfnlp training run, or not started yet)")
        print(describe(status))
        for entry in channel.entries():
            print(format_entry(entry))
        return 0
    if not (args.wait >= 0 and math.isfinite(args.wait)):
        raise HfnlpError(f"--wait must be a number of seconds, 0 or more, got {args.wait:g}")
    try:
        command = ControlCommand.from_mapping(request, source="cli")
        command.check_limits(channel.require_running().get("recipe_learning_rate"))
    except ValueError as error:
        raise HfnlpError(str(error)) from None
    channel.submit(command)
    entries = channel.wait_for(command.id, len(command.actions()), args.wait)
    for entry in entries:
        print(format_entry(entry))
    if len(entries) < len(command.actions()):
        raise HfnlpError(f"the run did not answer within {args.wait:g} s (request {command.id} stays queued)")
    return 0 if all(entry.get("applied") for entry in entries) else 1


def describe(status: dict[str, Any]) -> str:
    """One line on where the run stands."""
    if "global_step" not in status:
        return "no live status in this folder (not an hfnlp training run, or not started yet)"
    state = "running" if status["alive"] else status.get("state", "?")
    eta = status.get("eta_seconds")
    eta_text = f", ETA {eta / 60:.1f} min" if eta is not None and status["alive"] else ""
    rate = status.get("learning_rate")
    rate_text = f", lr {rate:.3g}" if isinstance(rate, float) and math.isfinite(rate) else ""
    return (
        f"{status.get('run')}: {state}, step {status['global_step']}/{status.get('max_steps')}, "
        f"epoch {status.get('epoch') or 0:.2f}/{status.get('num_train_epochs')}{rate_text}{eta_text}"
    )


def format_entry(entry: dict[str, Any]) -> str:
    """One control log entry as a line: ``step 37: learning_rate 0.01 → 0.001 (cli)``."""
    change = f"{entry.get('old')} → {entry.get('new')}" if entry.get("old") is not None else f"{entry.get('new')}"
    result = "" if entry.get("applied") else f" REJECTED: {entry.get('reason')}"
    return (
        f"{entry.get('time')} step {entry.get('step')}: {entry.get('action')} {change} ({entry.get('source')}){result}"
    )
