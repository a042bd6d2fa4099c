"""The live dashboard: access token, request limits, and a real headless Chromium steering a real run."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

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
    status = {"run": "run", "state": "running", "pid": os.getpid(), "global_step": 3, "max_steps": 10}
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


def wait_for_url(capsys: pytest.CaptureFixture, training: threading.Thread) -> str:
    output, deadline = "", time.monotonic() + 240
    while time.monotonic() < deadline and training.is_alive():
        output += capsys.readouterr().out
        if found := re.search(r"dashboard: (http://127\.0\.0\.1:\d+/\?token=\S+)", output):
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no dashboard URL printed: {output[-2000:]}")
