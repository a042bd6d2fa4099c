"""Options that several sub-commands share (a private module: :mod:`hfnlp.cli` adds no sub-command for it)."""

from __future__ import annotations

import argparse


def add_overrides_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides`` for :func:`hfnlp.tasks.load_recipe`."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text)
