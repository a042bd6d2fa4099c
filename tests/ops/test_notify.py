"""Notifications against a real local HTTP server that records what it receives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from transformers import Trainer

from hfnlp.cli import main

SECRETS = {
    "HOOK_TOKEN": "hook-secret-8c1f",
    "WX_TOKEN": "AT_wx-secret-77aa",
    "SLACK_URL": None,  # set to the local server's address (the URL is the secret)
    "FEISHU_SECRET": "feishu-secret-3b9d",
    "DINGTALK_SECRET": "SECding-secret-0e42",
}
ANSWERS = {"/api/send/message": {"code": 1000, "msg": "ok"}, "/feishu": {"code": 0}, "/dingtalk": {"errcode": 0}}


class Recorder(ThreadingHTTPServer):
    """Records every POST (path, query, headers, JSON body) and answers like the real services."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.received: list[dict] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str) -> list[dict]:
        return [item["body"] for item in self.received if item["path"] == path]


class RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(
            {"path": url.path, "query": urllib.parse.parse_qs(url.query), "headers": dict(self.headers), "body": body}
        )
        answer = json.dumps(ANSWERS.get(url.path, {"ok": True})).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def notify_section(base: str, **options) -> dict:
    return {
        "notifiers": [
            {"type": "webhook", "url": f"{base}/hook", "token_env": "HOOK_TOKEN"},
            {"type": "wxpusher", "endpoint": base, "token_env": "WX_TOKEN", "uids": ["UID_test"], "topic_ids": [7]},
            {"type": "slack", "url_env": "SLACK_URL"},
            {"type": "feishu", "url": f"{base}/feishu", "secret_env": "FEISHU_SECRET"},
            {"type": "dingtalk", "url": f"{base}/dingtalk?access_token=x", "secret_env": "DINGTALK_SECRET"},
        ],
        **options,
    }


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> dict[str, str]:
    values = {**SECRETS, "SLACK_URL": f"{recorder.url}/slack/T0/B0/slack-secret-51d2"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_epoch_end_and_run_end_reach_every_target_and_secrets_stay_out(
    make_recipe, recorder, secrets, tmp_path, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    recipe = make_recipe(notify=notify_section(recorder.url, on_epoch_end=True), logging_steps=5)
    assert main(["train", str(recipe)]) == 0

    events = recorder.bodies("/hook")
    assert [event["event"] for event in events] == ["epoch_end", "epoch_end", "run_end"]
    assert [event["epoch"] for event in events] == [1.0, 2.0, 2.0]
    assert "eval_accuracy" in events[0]["metrics"] and "test_accuracy" in events[2]["metrics"]
    assert events[2]["run"] == "run" and events[2]["error"] is None and "run finished" in events[2]["text"]
    hook = next(item for item in recorder.received if item["path"] == "/hook")
    assert hook["headers"]["Authorization"] == f"Bearer {secrets['HOOK_TOKEN']}"

    (wx, *_) = recorder.bodies("/api/send/message")
    assert (wx["appToken"], wx["uids"], wx["topicIds"], wx["contentType"]) == (
        secrets["WX_TOKEN"],
        ["UID_test"],
        [7],
        1,
    )
    assert wx["content"].startswith("hfnlp run: epoch done at epoch 1")
    assert len(recorder.bodies("/slack/T0/B0/slack-secret-51d2")) == 3

    feishu = recorder.bodies("/feishu")[-1]
    key = f"{feishu['timestamp']}\n{secrets['FEISHU_SECRET']}".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "run finished" in feishu["content"]["text"]
    ding = next(item for item in reversed(recorder.received) if item["path"] == "/dingtalk")
    timestamp, secret = ding["query"]["timestamp"][0], secrets["DINGTALK_SECRET"]
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    assert ding["query"]["sign"] == [base64.b64encode(digest).decode()] and ding["body"]["msgtype"] == "text"

    written = b"".join(path.read_bytes() for path in (tmp_path / "run").rglob("*") if path.is_file())
    logs = caplog.text + "".join(capsys.readouterr())
    for secret in secrets.values():
        assert secret.encode() not in written and secret not in logs
    assert b"WX_TOKEN" in (tmp_path / "run" / "recipe.yaml").read_bytes()  # only the variable's name is kept


def test_a_crash_is_notified_with_its_error(make_recipe, recorder, secrets, monkeypatch):
    training_step = Trainer.training_step

    def crash_at_step_3(self, *args, **kwargs):
        if self.state.global_step == 3:
            raise RuntimeError("forced crash")
        return training_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", crash_at_step_3)
    recipe = make_recipe(notify=notify_section(recorder.url))
    with pytest.raises(RuntimeError, match="forced crash"):
        main(["train", str(recipe)])
    (crash,) = recorder.bodies("/hook")
    assert (crash["event"], crash["step"]) == ("crash", 3)
    assert crash["error"].startswith("RuntimeError: forced crash") and "CRASHED" in crash["text"]
    assert "forced crash" in recorder.bodies("/api/send/message")[0]["content"]


def test_training_completes_when_the_notification_server_is_down(make_recipe, caplog, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HOOK_TOKEN", SECRETS["HOOK_TOKEN"])
    notify = {"notifiers": [{"type": "webhook", "url": f"http://127.0.0.1:{port}/hook", "token_env": "HOOK_TOKEN"}]}
    recipe = make_recipe(notify={**notify, "retries": 1, "timeout_s": 2}, num_train_epochs=1)
    assert main(["train", str(recipe)]) == 0
    assert json.loads((Path(recipe).parent / "run" / "metrics.json").read_text())["epochs"] == 1.0
    failures = [record.getMessage() for record in caplog.records if "notification run_end" in record.getMessage()]
    assert len(failures) == 2 and all("failed" in message for message in failures)
    assert SECRETS["HOOK_TOKEN"] not in caplog.text
