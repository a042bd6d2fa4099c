"""The ``hfnlp`` command line. Each module of :mod:`hfnlp.commands` adds one sub-command; every one ends with the
exit status of :data:`EXIT_STATUS`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback

import hfnlp
import hfnlp.commands
from hfnlp.errors import HfnlpError
from hfnlp.training.threads import choose_wait_policy

logger = logging.getLogger(__name__)
EXIT_STATUS = (
    "exit status: 0 done; 2 a mistake in the recipe, data or arguments (one line says what and where); "
    "1 an internal error, a bug (with its traceback); 130 interrupted"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command of :mod:`hfnlp.commands`."""
    parser = argparse.ArgumentParser(
        prog="hfnlp", description="Train, evaluate, share and use models described by YAML recipes.", epilog=EXIT_STATUS
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"hfnlp {hfnlp.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(hfnlp.commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):  # shared helpers, not sub-commands
            continue
        importlib.import_module(f"hfnlp.commands.{module_info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command and return its exit status (:data:`EXIT_STATUS`)."""
    args = build_parser().parse_args(argv)
    # After parsing (--help, --version and a mistyped argument end there, without the quarter second it measures),
    # before a command imports torch: OpenMP reads its wait policy once, when torch loads it (neither the imports
    # above nor the commands' modules load torch; tests/training/test_threads.py checks that).
    choose_wait_policy()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args) or 0
    except HfnlpError as error:
        logger.debug("where the error was raised", exc_info=True)  # with -v, for whoever wonders
        # One line, whatever the message quotes (a data row, a library's multi-line message).
        print(f"hfnlp: error: {' '.join(str(error).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hfnlp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output closed it (`hfnlp predict ... | head`): what it wanted was printed. Point stdout at
        # /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        traceback.print_exc()
        print(
            f"hfnlp: internal error (a bug): {type(error).__name__}: {' '.join(str(error).split())}; please report "
            "it to the hfnlp maintainers with the command and this traceback (rerun with `hfnlp -v ...` for debug "
            "logging)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
