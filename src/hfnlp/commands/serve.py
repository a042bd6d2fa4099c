"""``hfnlp serve MODEL``: an HTTP inference API for a saved model, on 127.0.0.1 unless --host says otherwise."""

from __future__ import annotations

import argparse

from hfnlp.serving.server import BACKENDS, DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, ServeOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a saved model over HTTP (POST /predict, GET /health, docs at /docs)",
        description="Serve a text classifier, image classifier or image captioner over HTTP. Every request but "
        "/health and the API docs needs 'Authorization: Bearer TOKEN': the token is the value of --token-env's "
        "variable or, when it is unset, a random one printed once to stderr. Concurrent requests are batched into "
        "one forward pass.",
    )
    parser.add_argument("model", help="saved model folder, run folder, or Hub id")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: a free one)")
    parser.add_argument(
        "--token-env",
        default=TOKEN_ENV,
        metavar="NAME",
        help=f"environment variable holding the token (default: {TOKEN_ENV}; unset: a token is generated)",
    )
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="most inputs per forward pass, at least 1 (default: 32)"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="with the model idle, how long a request waits for others to share its forward pass, in ms (default: 0; "
        "under load, the requests that arrive while the model runs form the next batch anyway)",
    )
    parser.add_argument(
        "--no-batching", dest="batching", action="store_false", help="run each request alone (for comparisons)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch, or onnx for text classifiers (the folder's onnx/model.onnx, else exported at start-up)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model folder's own code")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from hfnlp.serving.server import serve

    serve(
        ServeOptions(
            model=args.model,
            host=args.host,
            port=args.port,
            token_env=args.token_env,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            batching=args.batching,
            backend=args.backend,
            trust_remote_code=args.trust_remote_code,
        )
    )
    return 0
