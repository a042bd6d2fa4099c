"""Options that several sub-commands share (a private module: :mod:`hfnlp.cli` adds no sub-command for it)."""

from __future__ import annotations

import argparse
from typing import Any

# How to read a data file nobody described (``hfnlp recipe --data``, ``hfnlp train --data``): option → default.
DATA_OPTION_DEFAULTS: dict[str, Any] = {
    "--validation-file": None,
    "--test-file": None,
    "--text-column": [],
    "--label-column": None,
    "--label-file": None,
    "--format": "auto",
    "--column-names": None,
    "--encoding": "utf-8",
    "--bad-rows": "error",
}


def add_overrides_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides`` for :func:`hfnlp.tasks.load_recipe`."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def add_data_options(parser: argparse._ActionsContainer, *, required: bool) -> None:
    """``--data FILE`` and how to read it (:data:`DATA_OPTION_DEFAULTS`); :func:`guess_data_arguments` turns them
    into the arguments of :func:`hfnlp.profile.guess_data_section`."""
    parser.add_argument(
        "--data", required=required, help="training file (csv/tsv/txt/json/jsonl/parquet) or label folder"
    )
    parser.add_argument("--validation-file", help="validation split (default: carved from the training data)")
    parser.add_argument("--test-file", help="test split (default: carved from the training data)")
    parser.add_argument(
        "--text-column",
        dest="text_columns",
        action="append",
        default=[],
        help="text column (default: guessed; repeat it to join several columns)",
    )
    parser.add_argument("--label-column", help="label column (default: guessed)")
    parser.add_argument("--label-file", help="the class names in id order, one a line (THUCNews' class.txt)")
    parser.add_argument("--format", default="auto", help="file format (default: from the extension)")
    parser.add_argument("--column-names", help="comma-separated column names for a header-less file")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--bad-rows", choices=["error", "skip"], default="error")


def guess_data_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`hfnlp.profile.guess_data_section` (besides the train file, ``args.data``)
    from the options :func:`add_data_options` added."""
    return {
        "validation_file": args.validation_file,
        "test_file": args.test_file,
        "text_columns": list(args.text_columns),
        "label_column": args.label_column,
        "label_file": args.label_file,
        "file_format": args.format,
        "column_names": args.column_names.split(",") if args.column_names else None,
        "encoding": args.encoding,
        "bad_rows": args.bad_rows,
    }


def given_data_options(args: argparse.Namespace) -> list[str]:
    """The data-reading options (besides ``--data``) that ``args`` sets to something else than their default."""
    return [
        option
        for option, default in DATA_OPTION_DEFAULTS.items()
        if getattr(args, "text_columns" if option == "--text-column" else option[2:].replace("-", "_")) != default
    ]
