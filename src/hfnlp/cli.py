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
from typing import Any

import hfnlp
import hfnlp.commands
from hfnlp.errors import HfnlpError
from hfnlp.training.allocator import keep_freed_memory
from hfnlp.training.threads import choose_wait_policy

logger = logging.getLogger(__name__)
EXIT_STATUS = (
    "exit status: 0 done; 2 a mistake in the recipe, data or arguments (one line says what and where); "
    "1 an internal error, a bug (with its traceback); 130 interrupted"
)


class IntermixedArgumentParser(argparse.ArgumentParser):
    """A sub-command's parser that takes its options and positionals in any order (``hfnlp predict MODEL
    --trust-remote-code "text"``, ``hfnlp train --set k=v RECIPE``): argparse's own parser hands an optional or
    ``*`` positional its empty value at the first option and then refuses what follows as unrecognized."""

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # parse_known_intermixed_args calls parse_known_args twice (options first, then positionals): those inner
        # calls must be the plain ones.
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


class CurrentStderrHandler(logging.StreamHandler):
    """Writes each record to ``sys.stderr`` as it is when the record is emitted, not as it was when the handler was
    made: a handler bound to an earlier stream (a test's captured one, since closed) fails on every record."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ and setStream assign it; the stream is always the current sys.stderr


def configure_logging(verbose: bool) -> None:
    """One handler on the root logger, at the level this call asks for (a second ``main`` in the same process, as
    in tests, changes the level instead of being ignored as ``logging.basicConfig`` would)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, CurrentStderrHandler)]:
        root.removeHandler(handler)
    handler = CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # transformers and datasets give their loggers a StreamHandler of their own, bound to sys.stderr as it was when
    # they first logged: after an earlier call in this process (a test's), that stream may be closed.
    for logger in list(logging.root.manager.loggerDict.values()):
        for library_handler in getattr(logger, "handlers", []):
            if type(library_handler) is logging.StreamHandler and library_handler.stream is not sys.stdout:
                with library_handler.lock:  # not setStream: it flushes the old stream, which may be closed
                    library_handler.stream = sys.stderr


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command of :mod:`hfnlp.commands`."""
    parser = argparse.ArgumentParser(
        prog="hfnlp", description="Train, evaluate, share and use models described by YAML recipes.", epilog=EXIT_STATUS
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"hfnlp {hfnlp.__version__}")
    # A command that never loads torch or transformers (control, dashboard) sets it False: it starts in a blink.
    parser.set_defaults(loads_libraries=True)
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=IntermixedArgumentParser
    )
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
    keep_freed_memory()
    configure_logging(args.verbose)
    if args.loads_libraries:
        from hfnlp.training.console import quiet_console  # loads torch and transformers: after the wait policy

        quiet_console()
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
