"""``hfnlp dashboard``'s HTTP server: the live page, the run's status as JSON, and control requests.

Standard library only. Bound to 127.0.0.1 by default; every request needs the random access token (query
``?token=`` or header ``X-Hfnlp-Token``): none → 401, a wrong one → 403. Control requests are small JSON objects:
another content type → 415, no length → 411, more than 4 KiB → 413, malformed or invalid → 400, and 409 when no
training loop is running to apply them. The page is one document with inline script and style under a strict
Content-Security-Policy (a per-response nonce; no other origin is ever contacted).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
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


class DashboardServer:
    """Serve the dashboard of the run in ``run_dir`` on ``host:port`` (port 0: any free port)."""

    def __init__(self, run_dir: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.channel = ControlChannel(run_dir)
        self.token = secrets.token_urlsafe(24)
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.dashboard = self  # type: ignore[attr-defined]
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

    def authorized(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> HTTPStatus | None:
        """``None`` if the request carries the token, else the status to refuse it with."""
        given = handler.headers.get("X-Hfnlp-Token") or (query.get("token") or [""])[0]
        if not given:
            return HTTPStatus.UNAUTHORIZED
        return None if hmac.compare_digest(given.encode(), self.token.encode()) else HTTPStatus.FORBIDDEN

    def status(self) -> dict[str, Any]:
        """The run's live status with the latest control log entries."""
        status = self.channel.status()
        status["control_log"] = self.channel.entries()[-LOG_ENTRIES_SHOWN:]
        status.setdefault("run", self.channel.run_dir.name)
        return status

    def control(self, data: Any) -> str:
        """Validate and queue a control request; return its id (``ValueError``/``HfnlpError`` if refused)."""
        command = ControlCommand.from_mapping(data, source="dashboard")
        self.channel.require_running()
        return self.channel.submit(command)


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
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._send_json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            return
        length = int(length_header)
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True  # the body is not read
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"at most {MAX_REQUEST_BYTES} bytes"})
            return
        try:
            data = json.loads(self.rfile.read(length))
            request = self.dashboard.control(data)
        except (ValueError, UnicodeDecodeError) as error:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except HfnlpError as error:
            self._send_json(HTTPStatus.CONFLICT, {"error": str(error)})
        else:
            self._send_json(HTTPStatus.ACCEPTED, {"request": request})

    def _authorized(self, query: str) -> bool:
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
