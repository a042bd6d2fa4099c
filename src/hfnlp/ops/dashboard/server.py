"""``hfnlp dashboard``'s HTTP server: the live page, the run's status as JSON, and control requests.

Standard library only. Bound to 127.0.0.1 by default. Every request must be addressed to the dashboard itself —
``Host`` a loopback name or address (``127.0.0.1``, ``localhost``, ``[::1]``; or the address given to bind) with
the server's port, so that a web page cannot reach it through DNS rebinding, and ``Origin``, when present, the
dashboard's own origin — else 403; and it needs the random access token (query ``?token=`` or header
``X-Hfnlp-Token``): none → 401, a wrong one → 403. Control requests are small JSON objects: another content type →
415, no length → 411, a malformed length → 400, more than 4 KiB → 413, malformed, too deeply nested or invalid →
400, and 409 when no training loop is running to apply them. Refusals are short JSON errors; a request that fails
anyway is logged in one line, never with a traceback. The page is one document with inline script and style under a
strict Content-Security-Policy (a per-response nonce; no other origin is ever contacted).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hfnlp.errors import HfnlpError
from hfnlp.ops.control.channel import MAX_REQUEST_BYTES, ControlChannel, ControlCommand

logger = logging.getLogger(__name__)
LOG_ENTRIES_SHOWN = 100
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")  # binds to every address
CONTENT_LENGTH = re.compile(r"[0-9]{1,9}")  # ASCII digits only: int() would also take '١٢' or fail on '²'


class DashboardServer:
    """Serve the dashboard of the run in ``run_dir`` on ``host:port`` (port 0: any free port).

    Raises :class:`~hfnlp.errors.HfnlpError` when the address cannot be bound (a port in use, say).
    """

    def __init__(self, run_dir: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.channel = ControlChannel(run_dir)
        self.token = secrets.token_urlsafe(24)
        try:
            self.httpd = _Server((host, port), _Handler)
        except (OSError, OverflowError) as error:  # in use, not this machine's, or not a port number
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise HfnlpError(f"dashboard: cannot serve on {host}:{port}: {reason}") from None
        self.httpd.dashboard = self  # type: ignore[attr-defined]
        bound = self.httpd.server_address[1]
        names = set(LOOPBACK_NAMES)
        if host not in WILDCARD_ADDRESSES:  # an address given to bind is the dashboard's too
            names.add(f"[{host}]" if ":" in host else host)
        self.hosts = {f"{name.lower()}:{bound}" for name in names}
        self._any_address = host in WILDCARD_ADDRESSES
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, with the access token."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/?token={self.token}"

    def start(self) -> str:
        """Serve in a background thread; return :attr:`url`."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hfnlp-dashboard", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        try:
            self.httpd.serve_forever()
        finally:
            self.httpd.server_close()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()

    def addressed(self, handler: BaseHTTPRequestHandler) -> str | None:
        """``None`` if the request's ``Host`` and ``Origin`` are this dashboard's, else why not."""
        host = (handler.headers.get("Host") or "").strip().lower()
        if not self._host_allowed(host):
            return "the Host header must name this dashboard (127.0.0.1, localhost or [::1] with its port)"
        origin = handler.headers.get("Origin")
        if origin is not None and origin.strip().lower() != f"http://{host}":
            return "cross-origin requests are not allowed"
        return None

    def _host_allowed(self, host: str) -> bool:
        if host in self.hosts:
            return True
        # Bound to every address: any IP literal with the port (DNS rebinding needs a host *name*).
        name, _, port = host.rpartition(":")
        if not self._any_address or port != str(self.httpd.server_address[1]):
            return False
        try:
            ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        return True

    def authorized(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> HTTPStatus | None:
        """``None`` if the request carries the token, else the status to refuse it with."""
        given = handler.headers.get("X-Hfnlp-Token") or (query.get("token") or [""])[0]
        if not given:
            return HTTPStatus.UNAUTHORIZED
        return None if hmac.compare_digest(given.encode(), self.token.encode()) else HTTPStatus.FORBIDDEN

    def status(self) -> dict[str, Any]:
        """The run's live status with the latest control log entries."""
        status = self.channel.status()
        try:
            status["control_log"] = self.channel.entries()[-LOG_ENTRIES_SHOWN:]
        except HfnlpError as error:  # a damaged log must not blank the page: show the rest, and the problem
            status["control_log"], status["control_log_error"] = [], str(error)
        status.setdefault("run", self.channel.run_dir.name)
        return status

    def control(self, data: Any) -> str:
        """Validate and queue a control request; return its id (``ValueError``/``HfnlpError`` if refused)."""
        command = ControlCommand.from_mapping(data, source="dashboard")
        command.check_limits(self.channel.require_running().get("recipe_learning_rate"))
        return self.channel.submit(command)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; one line is enough: the request is lost either way.
        logger.warning("dashboard: a request from %s failed: %r", client_address[0], sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    server_version = "hfnlp-dashboard"
    sys_version = ""
    timeout = 10  # a stalled client cannot hold a thread

    @property
    def dashboard(self) -> DashboardServer:
        return self.server.dashboard  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if not self._authorized(url.query):
            return
        if url.path == "/":
            nonce = secrets.token_urlsafe(16)
            self._send(HTTPStatus.OK, render_page(nonce).encode(), "text/html; charset=utf-8", nonce=nonce)
        elif url.path == "/api/status":
            self._send_json(HTTPStatus.OK, self.dashboard.status())
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if not self._authorized(url.query):
            return
        if url.path != "/api/control":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        if self.headers.get_content_type() != "application/json":
            self._send_json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self._send_json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            return
        if len(lengths) > 1 or not CONTENT_LENGTH.fullmatch(lengths[0].strip()):
            self.close_connection = True  # where the body ends is unknown
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "malformed Content-Length"})
            return
        length = int(lengths[0])
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True  # the body is not read
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"at most {MAX_REQUEST_BYTES} bytes"})
            return
        try:
            body = self.rfile.read(length)
        except OSError:  # the client stalled (time-out) or went away: nobody to answer
            self.close_connection = True
            return
        if len(body) < length:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "the body is shorter than its Content-Length"})
            return
        try:
            data = json.loads(body)
        except RecursionError:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "JSON nested too deeply"})
            return
        except ValueError as error:  # UnicodeDecodeError included
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"malformed JSON: {error}"})
            return
        try:
            request = self.dashboard.control(data)
        except ValueError as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except HfnlpError as error:
            self._send_json(HTTPStatus.CONFLICT, {"error": str(error)})
        else:
            self._send_json(HTTPStatus.ACCEPTED, {"request": request})

    def _authorized(self, query: str) -> bool:
        misdirected = self.dashboard.addressed(self)
        if misdirected is not None:
            self.close_connection = True
            self._send_json(HTTPStatus.FORBIDDEN, {"error": misdirected})
            return False
        refusal = self.dashboard.authorized(self, parse_qs(query))
        if refusal is not None:
            self.close_connection = True
            self._send_json(refusal, {"error": "a valid access token is required"})
        return refusal is None

    def _send_json(self, status: HTTPStatus, body: Any) -> None:
        self._send(status, json.dumps(body, default=float).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, nonce: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        if nonce is not None:
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
                "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            )
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        # The default writes the request line, token included, to stderr.
        logger.debug("dashboard: %s %s", self.command, urlsplit(self.path).path)


def render_page(nonce: str) -> str:
    """The dashboard page: ``index.html`` with ``dashboard.css`` and ``dashboard.js`` inlined under ``nonce``."""
    static = resources.files("hfnlp.ops.dashboard") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    return (
        page.replace("__NONCE__", nonce)
        .replace("/*CSS*/", (static / "dashboard.css").read_text(encoding="utf-8"))
        .replace("/*JS*/", (static / "dashboard.js").read_text(encoding="utf-8"))
    )
