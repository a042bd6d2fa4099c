"""The ``hfnlp`` command line. Each module of :mod:`hfnlp.commands` adds one sub-command."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import hfnlp.commands
from hfnlp.errors import HfnlpError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command of :mod:`hfnlp.commands`."""
    parser = argparse.ArgumentParser(prog="hfnlp", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(hfnlp.commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):  # shared helpers, not sub-commands
            continue
        importlib.import_module(f"hfnlp.commands.{module_info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; user errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args) or 0
    except HfnlpError as error:
        print(f"hfnlp: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
