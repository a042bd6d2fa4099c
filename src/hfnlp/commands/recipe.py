"""``hfnlp recipe --data FILE``: profile a labelled text file (or label folders) and print the recipe it chooses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hfnlp.commands._options import add_data_options, guess_data_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recipe", help="profile labelled text data and write a text-classification recipe chosen from it"
    )
    add_data_options(parser, required=True)
    parser.add_argument("--output-dir", help="the recipe's output_dir (default: runs/<data name>-wide-mlp)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", help="write the recipe here (default: print it)")
    parser.set_defaults(handler=recipe)


def recipe(args: argparse.Namespace) -> int:
    from hfnlp.data.text import TextDataConfig
    from hfnlp.profile import guess_data_section, profile_text_data, recipe_from_profile
    from hfnlp.training.atomic import write_text

    section, guessed = guess_data_section(args.data, **guess_data_arguments(args))
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
