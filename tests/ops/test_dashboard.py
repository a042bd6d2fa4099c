"""The live dashboard: access token, request limits, and a real headless Chromium steering a real run."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import TrainerState

from hfnlp.cli import main
from hfnlp.ops.control.channel import ControlChannel
from hfnlp.ops.dashboard.server import DashboardServer
from hfnlp.ops.live_plots import LivePlotsCallback
from tests.ops.pacing import Pace, wait_until

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def request(url: str, data: bytes | None = None, content_type: str = "application/json") -> tuple[int, bytes, dict]:
    headers = {"Content-Type": content_type} if data is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@pytest.fixture
def server(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    status = {
        "run": "run",
        "state": "running",
        "pid": os.getpid(),
        "global_step": 3,
        "max_steps": 10,
        "recipe_learning_rate": 0.01,
    }
    (run / "live_status.json").write_text(json.dumps(status))
    server = DashboardServer(run)
    server.start()
    yield server
    server.close()


def test_every_request_needs_the_token(server):
    assert server.httpd.server_address[0] == "127.0.0.1"  # this machine only, unless --host says otherwise
    base = server.url.split("?")[0]
    assert request(base)[0] == 401
    assert request(f"{base}api/status")[0] == 401
    assert request(f"{base}api/status?token=wrong")[0] == 403
    assert request(f"{base}api/control", b'{"stop_after_epoch": true}')[0] == 401
    status, page, headers = request(server.url)
    assert status == 200 and b'id="chart-loss"' in page
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">'.encode() in page
    assert not re.search(rb"""(src|href)=["']?(https?:)?//""", page), "the page loads nothing from elsewhere"
    status, body, _ = request(f"{base}api/status?token={server.token}")
    assert status == 200 and json.loads(body)["alive"] is True


def test_control_requests_are_checked_before_they_are_queued(server):
    control = f"{server.url.split('?')[0]}api/control?token={server.token}"
    assert request(control, b"x" * 5000)[0] == 413
    assert request(control, b"{not json")[0] == 400
    assert request(control, b'{"lr": 0.1}')[0] == 400
    assert request(control, b'{"learning_rate": -1}')[0] == 400
    assert request(control, b'{"learning_rate": 0.1}', content_type="text/plain")[0] == 415
    status, body, _ = request(control, b'{"learning_rate": 1e30}')
    assert status == 400 and "at most 100 × the recipe's 0.01" in json.loads(body)["error"]
    status, body, _ = request(control, b'{"learning_rate": 0.001, "checkpoint_now": true}')
    assert status == 202
    (queued,) = ControlChannel(server.channel.run_dir).receive()
    assert (queued.id, queued.learning_rate, queued.checkpoint_now, queued.source) == (
        json.loads(body)["request"],
        0.001,
        True,
        "dashboard",
    )
    (server.channel.run_dir / "live_status.json").write_text(json.dumps({"state": "finished", "pid": os.getpid()}))
    assert request(control, b'{"stop_after_epoch": true}')[0] == 409


def raw(server: DashboardServer, head: list[bytes], body: bytes = b"", path: str = "/api/status") -> tuple[int, dict]:
    """Send ``head`` (request header lines, after the request line) and ``body`` as they are; ``(status, json)``."""
    port = server.httpd.server_address[1]
    method = b"POST" if body else b"GET"
    lines = [method + f" {path}?token={server.token} HTTP/1.1".encode(), *head]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        connection.shutdown(socket.SHUT_WR)  # all sent: a short body ends here
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_requests_must_be_addressed_to_the_dashboard_itself(server):
    port = server.httpd.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        assert raw(server, [f"Host: {host}".encode()])[0] == 200, host
    for host in (f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1"):
        status, body = raw(server, [f"Host: {host}".encode()])  # DNS rebinding: another name for this address
        assert (status, body["error"]) == (
            403,
            "the Host header must name this dashboard (127.0.0.1, localhost or [::1] with its port)",
        ), host
    assert raw(server, [])[0] == 403  # no Host at all
    control = "/api/control"
    post = [f"Host: 127.0.0.1:{port}".encode(), b"Content-Type: application/json", b"Content-Length: 24"]
    body = b'{"checkpoint_now": true}'
    for origin in ("http://evil.example", "null", f"http://localhost:{port}", f"https://127.0.0.1:{port}"):
        status, answer = raw(server, [*post, f"Origin: {origin}".encode()], body, control)
        assert (status, answer["error"]) == (403, "cross-origin requests are not allowed"), origin
    assert ControlChannel(server.channel.run_dir).receive() == []  # nothing was queued
    assert raw(server, [*post, f"Origin: http://127.0.0.1:{port}".encode()], body, control)[0] == 202
    assert raw(server, post, body, control)[0] == 202  # no Origin: not from a page (curl, scripts)


def test_malformed_requests_get_a_short_400_never_a_traceback(server, capfd):
    head = [f"Host: 127.0.0.1:{server.httpd.server_address[1]}".encode(), b"Content-Type: application/json"]
    body = b'{"checkpoint_now": true}'
    lengths = ["١٢".encode(), "²".encode("latin-1"), b"24abc", b"-1", b"2e1", b"24, 24"]
    for length in lengths:
        status, answer = raw(server, [*head, b"Content-Length: " + length], body, "/api/control")
        assert (status, answer) == (400, {"error": "malformed Content-Length"}), length
    twice = [*head, b"Content-Length: 24", b"Content-Length: 24"]
    assert raw(server, twice, body, "/api/control") == (400, {"error": "malformed Content-Length"})
    for nested in (b"[" * 4000, b'{"learning_rate": ' + b"[" * 2000 + b"]" * 2000 + b"}"):
        length = f"Content-Length: {len(nested)}".encode()
        assert raw(server, [*head, length], nested, "/api/control") == (400, {"error": "JSON nested too deeply"})
    status, answer = raw(server, [*head, b"Content-Length: 4"], b"\xff\xfe{}", "/api/control")
    assert status == 400 and answer["error"].startswith("malformed JSON")
    short = raw(server, [*head, b"Content-Length: 40"], body, "/api/control")
    assert short == (400, {"error": "the body is shorter than its Content-Length"})
    assert raw(server, head[:1])[0] == 200  # still serving
    assert "Traceback" not in capfd.readouterr().err


def test_a_damaged_control_log_does_not_blank_the_page(server):
    status_url = f"{server.url.split('?')[0]}api/status?token={server.token}"
    channel = ControlChannel(server.channel.run_dir)
    channel.record({"step": 2, "action": "checkpoint", "new": "checkpoint-2", "applied": True})
    with channel.log_path.open("ab") as handle:
        handle.write(b'{"step": 3, "act')  # killed while appending
    status = json.loads(request(status_url)[1])
    assert [entry["step"] for entry in status["control_log"]] == [2] and "control_log_error" not in status
    channel.log_path.write_bytes(b"garbage\n" + channel.log_path.read_bytes())
    status = json.loads(request(status_url)[1])
    assert status["control_log"] == [] and "control_log.jsonl, line 1: not a JSON object" in status["control_log_error"]
    assert status["global_step"] == 3  # the rest of the page is still there


def test_a_port_in_use_is_one_line_and_exit_2(make_recipe, tmp_path, capsys):
    recipe = make_recipe()
    ControlChannel(tmp_path / "finished").record({"action": "checkpoint", "applied": True})
    (tmp_path / "finished" / "recipe.yaml").write_text("task: text-classification\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for argv in (
            ["train", str(recipe), "--dashboard-port", str(port)],
            ["dashboard", str(tmp_path / "finished"), "--port", str(port)],
        ):
            assert main(argv) == 2
            error = capsys.readouterr().err
            assert error == f"hfnlp: error: dashboard: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize(
    ("folder", "problem"),
    [("missing", "no run folder at"), ("a-file", "is a file, not a run folder"), ("empty", "not an hfnlp run folder")],
)
def test_dashboard_of_a_bad_run_folder_is_one_line_and_exit_2(tmp_path, capsys, folder, problem):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    assert main(["dashboard", str(tmp_path / folder)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hfnlp: error: ") and error.count("\n") == 1 and problem in error


def test_browser_sees_live_curves_and_stops_the_run_after_the_epoch(make_recipe, tmp_path, extra_callbacks, capsys):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("the browser test needs Chromium: apt-get install -y chromium")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright").sync_playwright
    recipe = make_recipe(rows=200, num_train_epochs=40, logging_steps=2)  # 10 steps per epoch
    extra_callbacks(Pace(0.1))
    result: dict[str, int] = {}
    training = threading.Thread(target=lambda: result.update(rc=main(["train", str(recipe), "--dashboard"])))
    training.start()
    try:
        url = wait_for_url(capsys, training)
        assert request(url.split("?")[0])[0] == 401  # the page itself needs the token too
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)

            def points() -> int:
                # polled from Python: the page's CSP forbids the eval behind Playwright's wait_for_function
                return int(page.get_attribute("#chart-loss", "data-points") or 0)

            wait_until(lambda: points() > 0, 180, "the loss curve")
            seen = points()
            wait_until(lambda: points() > seen, 60, "the loss curve to grow")
            assert page.text_content("#run-state") == "running"
            page.click("#stop-after-epoch")
            wait_until(lambda: (page.text_content("#control-result") or "").startswith("queued"), 30, "the request")
            browser.close()
    finally:
        training.join(timeout=300)
    assert result.get("rc") == 0
    run = tmp_path / "run"
    (stop,) = ControlChannel(run).entries()
    assert (stop["action"], stop["source"], stop["applied"]) == ("stop_after_epoch", "dashboard", True)
    epoch = stop["new"]
    assert epoch == int(epoch) and epoch < 40
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["global_step"]) == (epoch, 10 * epoch)
    assert (run / f"checkpoint-{10 * int(epoch)}").is_dir() and (run / "model" / "config.json").is_file()
    confusion = json.loads((run / "live_status.json").read_text())["confusion_matrix"]
    assert confusion["labels"] == ["negative", "positive"] and confusion["epoch"] == epoch
    assert sum(map(sum, confusion["matrix"])) == 20  # every validation row, counted once


def test_curves_are_redrawn_after_each_evaluation(tmp_path):
    history = [
        {"loss": 0.9, "learning_rate": 0.01, "step": 5, "epoch": 0.5},
        {"eval_loss": 0.8, "eval_accuracy": 0.6, "step": 10, "epoch": 1.0},
    ]
    LivePlotsCallback(tmp_path, min_interval_s=0).on_evaluate(None, TrainerState(log_history=history), None)
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_curves_wait_min_interval_s_after_training_starts(tmp_path):
    """A run shorter than the interval spends none of its training time drawing (the task draws the final curves)."""
    state, args = (
        TrainerState(log_history=[{"loss": 0.9, "step": 5, "epoch": 1.0}]),
        SimpleNamespace(eval_strategy="no"),
    )
    plots = LivePlotsCallback(tmp_path, min_interval_s=60)
    plots.on_train_begin(args, state, None)
    plots.on_epoch_end(args, state, None)
    assert not (tmp_path / "curves.png").exists()
    plots.min_interval_s = 0
    plots.on_epoch_end(args, state, None)
    assert (tmp_path / "curves.png").is_file()


def wait_for_url(capsys: pytest.CaptureFixture, training: threading.Thread) -> str:
    output, deadline = "", time.monotonic() + 240
    while time.monotonic() < deadline and training.is_alive():
        output += capsys.readouterr().out
        if found := re.search(r"dashboard: (http://127\.0\.0\.1:\d+/\?token=\S+)", output):
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no dashboard URL printed: {output[-2000:]}")


@pytest.mark.parametrize("label_smoothing_factor", [0.0, 0.1])
def test_the_live_confusion_matrix_counts_every_validation_row_also_under_label_smoothing(
    make_recipe, tmp_path, label_smoothing_factor
):
    # Under label smoothing Trainer takes the labels out of the model's inputs: the matrix must not go blank.
    recipe = make_recipe(rows=100, num_train_epochs=1, label_smoothing_factor=label_smoothing_factor)
    assert main(["train", str(recipe)]) == 0
    confusion = json.loads((tmp_path / "run" / "live_status.json").read_text())["confusion_matrix"]
    assert confusion["labels"] == ["negative", "positive"]
    assert sum(map(sum, confusion["matrix"])) == 10  # the 10% of 100 rows carved for validation, each once
