"""``hfnlp recipe --data FILE``: profile a labelled text file (or label folders) and print the recipe it chooses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recipe", help="profile labelled text data and write a text-classification recipe chosen from it"
    )
    parser.add_argument("--data", required=True, help="training file (csv/tsv/txt/json/jsonl/parquet) or label folder")
    parser.add_argument("--validation-file", help="validation split (default: carved from the training data)")
    parser.add_argument("--test-file", help="test split (default: carved from the training data)")
    parser.add_argument(
        "--text-column", dest="text_columns", action="append", default=[], help="text column (default: guessed)"
    )
    parser.add_argument("--label-column", help="label column (default: guessed)")
    parser.add_argument("--label-file", help="the class names in id order, one a line (THUCNews' class.txt)")
    parser.add_argument("--format", default="auto", help="file format (default: from the extension)")
    parser.add_argument("--column-names", help="comma-separated column names for a header-less file")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--bad-rows", choices=["error", "skip"], default="error")
    parser.add_argument("--output-dir", help="the recipe's output_dir (default: runs/<data name>-wide-mlp)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", help="write the recipe here (default: print it)")
    parser.set_defaults(handler=recipe)


def recipe(args: argparse.Namespace) -> int:
    from hfnlp.data.text import TextDataConfig
    from hfnlp.profile import guess_data_section, profile_text_data, recipe_from_profile
    from hfnlp.training.atomic import write_text

    section, guessed = guess_data_section(
        args.data,
        validation_file=args.validation_file,
        test_file=args.test_file,
        text_columns=args.text_columns,
        label_column=args.label_column,
        label_file=args.label_file,
        file_format=args.format,
        column_names=args.column_names.split(",") if args.column_names else None,
        encoding=args.encoding,
        bad_rows=args.bad_rows,
    )
    profile = profile_text_data(TextDataConfig(**section), seed=args.seed)
    draft = recipe_from_profile(profile, section, output_dir=args.output_dir, seed=args.seed, guessed=guessed)
    profiled = f"profiled in {profile.seconds:.1f} s"
    notes = [
        f"{key.removeprefix('data.')}: {section[key.removeprefix('data.')]!r} ({why})" for key, why in guessed.items()
    ]
    for line in [*notes, profiled, *profile.describe(), *(f"warning: {warning}" for warning in draft.warnings)]:
        print(line, file=sys.stderr)
    text = draft.to_yaml()
    if not args.out:
        sys.stdout.write(text)
        return 0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {write_text(args.out, text)}", file=sys.stderr)  # atomic: a reader never sees half a recipe
    return 0
