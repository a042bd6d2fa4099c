"""``hfnlp dashboard RUN_DIR``: the live page of a run (running or finished), with its controls."""

from __future__ import annotations

import argparse
import contextlib

from hfnlp.ops.control.channel import ControlChannel


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboard", help="serve the live training page of a run folder")
    parser.add_argument("run_dir", help="the run folder (the recipe's output_dir)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.set_defaults(handler=dashboard, loads_libraries=False)


def dashboard(args: argparse.Namespace) -> int:
    from hfnlp.ops.dashboard.server import DashboardServer

    ControlChannel(args.run_dir).require_run_folder()
    server = DashboardServer(args.run_dir, host=args.host, port=args.port)
    print(f"dashboard: {server.url}  (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
