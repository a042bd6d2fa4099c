"""Running the app: options checked, the token chosen, the model loaded, the port bound, then uvicorn.

Everything a user can get wrong (options, the model, a port in use) is refused as an
:class:`~hfnlp.errors.HfnlpError` before the server accepts a connection.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfnlp.errors import HfnlpError

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_ENV = "HFNLP_SERVE_TOKEN"
# Kept free of torch and transformers: `hfnlp serve --help` reads these without loading them.
BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class ServeOptions:
    """What ``hfnlp serve`` was asked to do (see its ``--help``)."""

    model: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token_env: str = TOKEN_ENV
    max_batch_size: int = 32
    max_wait_ms: float = 0.0
    batching: bool = True
    backend: str = "torch"
    trust_remote_code: bool = False


def check_options(options: ServeOptions) -> None:
    """Refuse, in one line, an option value the server cannot run with."""
    if not 0 <= options.port <= 65535:
        raise HfnlpError(f"--port {options.port} is not a port number (0-65535; 0 picks a free one)")
    if options.max_batch_size < 1:
        raise HfnlpError(f"--max-batch-size must be at least 1, not {options.max_batch_size}")
    if not (math.isfinite(options.max_wait_ms) and options.max_wait_ms >= 0):
        raise HfnlpError(f"--max-wait-ms must be a number of milliseconds, 0 or more, not {options.max_wait_ms}")
    if options.backend not in BACKENDS:
        raise HfnlpError(f"--backend {options.backend!r}: choose one of {', '.join(BACKENDS)}")
    if not options.token_env:
        raise HfnlpError("--token-env needs the name of an environment variable")


def server_token(env_name: str) -> tuple[str, bool]:
    """The token requests must carry: the value of the environment variable ``env_name``, else a new random one;
    and whether it was generated (then the caller shows it once: it is stored nowhere)."""
    value = os.environ.get(env_name)
    if value is None:
        return secrets.token_urlsafe(32), True
    if not value.strip() or value != value.strip():
        raise HfnlpError(
            f"${env_name} is empty or has surrounding whitespace; set it to the token clients will send, or unset it "
            "to have one generated"
        )
    return value, False


def model_name(model: str) -> str:
    """How the API names the model: a Hub id as given, a local folder by its own name (not the whole path)."""
    path = Path(model)
    return path.resolve().name if path.exists() else model


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, or one line saying why there cannot be one."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise HfnlpError(f"--host {host}: not an address or host name this machine can resolve ({error})") from error
    sock = socket.socket(family, kind, protocol)
    # As uvicorn does: a port a previous server left in TIME_WAIT can be bound again at once, while one another
    # process listens on still cannot.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        what = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be bound ({error.strerror})"
        raise HfnlpError(f"{host}:{port} {what}; choose another --port (0 picks a free one)") from error
    return sock


def uvicorn_config(app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Any:
    """The uvicorn settings for ``app``: hfnlp's logging set-up (``log_config=None``), no ``server`` header."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_config=None, server_header=False, lifespan="on")


def serve(options: ServeOptions) -> None:
    """Load the model, bind the port and answer requests until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    from hfnlp.serving.app import create_app
    from hfnlp.serving.predictors import load_predictor

    check_options(options)
    token, generated = server_token(options.token_env)
    predictor = load_predictor(options.model, backend=options.backend, trust_remote_code=options.trust_remote_code)
    name = model_name(options.model)
    app = create_app(
        predictor,
        token,
        name,
        max_batch_size=options.max_batch_size,
        max_wait_ms=options.max_wait_ms,
        batching=options.batching,
    )
    sock = bind_socket(options.host, options.port)
    host, port = sock.getsockname()[:2]
    if not socket_is_loopback(host):
        logger.warning("listening on %s: any machine that can reach it may send requests (with the token)", host)
    shown = f"[{host}]" if ":" in host else host
    print(f"hfnlp serve: {predictor.task} with {name} on http://{shown}:{port} (API docs: /docs)", file=sys.stderr)
    if generated:
        print(
            f"hfnlp serve: ${options.token_env} is not set; send this token, shown once and stored nowhere: "
            f"Authorization: Bearer {token}",
            file=sys.stderr,
        )
    sys.stderr.flush()
    server = uvicorn.Server(uvicorn_config(app, host, port))
    with sock:
        server.run(sockets=[sock])
    if not server.started:
        raise RuntimeError("the server did not start; see the log above")


def socket_is_loopback(host: str) -> bool:
    """Whether ``host`` (an address) is a loopback one, reachable from this machine only."""
    import ipaddress

    return ipaddress.ip_address(host).is_loopback
