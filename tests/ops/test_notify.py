"""Notifications against a real local HTTP server that records what it receives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from transformers import Trainer

from hfnlp.cli import main
from hfnlp.errors import RecipeError
from hfnlp.ops.notify import MAX_EXIT_WAIT_S, NotifyCallback, exit_wait_s
from hfnlp.ops.notify_settings import check_notify_settings
from hfnlp.recipe import NotifierConfig, NotifyConfig

SECRETS = {
    "HOOK_TOKEN": "hook-secret-8c1f",
    "WX_TOKEN": "AT_wx-secret-77aa",
    # The bot URLs are the secrets: set to the local server's addresses.
    "SLACK_URL": None,
    "FEISHU_URL": None,
    "DINGTALK_URL": None,
    "FEISHU_SECRET": "feishu-secret-3b9d",
    "DINGTALK_SECRET": "SECding-secret-0e42",
}
ANSWERS = {
    "/api/send/message": {"code": 1000, "msg": "ok"},
    "/feishu/hook/feishu-hook-secret-6a0c": {"code": 0},
    "/dingtalk": {"errcode": 0},
}


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
            {"type": "feishu", "url_env": "FEISHU_URL", "secret_env": "FEISHU_SECRET"},
            {"type": "dingtalk", "url_env": "DINGTALK_URL", "secret_env": "DINGTALK_SECRET"},
        ],
        **options,
    }


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> dict[str, str]:
    values = {
        **SECRETS,
        "SLACK_URL": f"{recorder.url}/slack/T0/B0/slack-secret-51d2",
        "FEISHU_URL": f"{recorder.url}/feishu/hook/feishu-hook-secret-6a0c",
        "DINGTALK_URL": f"{recorder.url}/dingtalk?access_token=ding-token-secret-93f1",
    }
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

    feishu = recorder.bodies("/feishu/hook/feishu-hook-secret-6a0c")[-1]
    key = f"{feishu['timestamp']}\n{secrets['FEISHU_SECRET']}".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "run finished" in feishu["content"]["text"]
    ding = next(item for item in reversed(recorder.received) if item["path"] == "/dingtalk")
    timestamp, secret = ding["query"]["timestamp"][0], secrets["DINGTALK_SECRET"]
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    assert ding["query"]["sign"] == [base64.b64encode(digest).decode()] and ding["body"]["msgtype"] == "text"

    assert ding["query"]["access_token"] == ["ding-token-secret-93f1"]

    # No secret anywhere in the run folder: recipe.yaml, model/recipe.yaml, the model card `hfnlp push` uploads, ...
    run = tmp_path / "run"
    card = (run / "model" / "README.md").read_bytes()
    written = b"".join(path.read_bytes() for path in run.rglob("*") if path.is_file())
    logs = caplog.text + "".join(capsys.readouterr())
    for secret in secrets.values():
        assert secret.encode() not in written and secret.encode() not in card and secret not in logs
    for recipe_copy in (run / "recipe.yaml", run / "model" / "recipe.yaml"):
        assert b"WX_TOKEN" in recipe_copy.read_bytes() and b"DINGTALK_URL" in recipe_copy.read_bytes()


def test_a_crash_is_notified_with_its_error(make_recipe, recorder, secrets, monkeypatch):
    training_step = Trainer.training_step

    def crash_at_step_3(self, *args, **kwargs):
        if self.state.global_step == 3:
            raise RuntimeError("forced crash")
        return training_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", crash_at_step_3)
    recipe = make_recipe(notify=notify_section(recorder.url))
    assert main(["train", str(recipe)]) == 1  # not a user's mistake: an internal error, with its traceback
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


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ({"type": "webhook", "url": "https://bob:hunter2@hooks.example/x"}, "url: has user info"),
        ({"type": "webhook", "url": "https://hooks.example/x?key=s3cret"}, "url: has a secret in its query (key=…)"),
        ({"type": "webhook", "url": "https://hooks.example/x?a=1&access_token=s3"}, "(access_token=…)"),
        ({"type": "webhook", "url": "https://hooks.example/x?Sign=abc"}, "(Sign=…)"),
        ({"type": "webhook", "url": "https://hooks.slack.com/services/T0/B0/xyz"}, "has a service's token"),
        ({"type": "webhook", "url": "file:///etc/passwd"}, "must be an http:// or https:// address"),
        ({"type": "slack", "url": "https://hooks.example/T0/B0/xyz"}, "a slack webhook URL carries its key"),
        ({"type": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"}, "url_env"),
        ({"type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send"}, "url_env"),
        ({"type": "wxpusher", "endpoint": "https://u:p@wx.example", "token_env": "WX", "uids": ["U"]}, "endpoint:"),
        ({"type": "wxpusher", "token_env": "WX", "uids": ["AT_abcdef0123456789"]}, "uids: holds an app token"),
        ({"type": "webhook", "url": "https://hooks.example/x", "token_env": "tok-123-abc"}, "token_env must be the"),
        ({"type": "webhook", "url": "https://hooks.example/x", "url_env": "HOOK"}, "url or url_env, not both"),
    ],
)
def test_secrets_written_in_notifier_settings_are_refused(target, problem):
    config = NotifyConfig(notifiers=[NotifierConfig(**target)])
    with pytest.raises(RecipeError, match=re.escape(problem)) as refused:
        check_notify_settings(config)
    message = str(refused.value)
    assert message.startswith(f"notify.notifiers[0] ({target['type']}): ") and "\n" not in message
    assert not any(secret in message for secret in ("hunter2", "s3cret", "xyz", "tok-123", "abcdef0123"))


def test_a_secret_in_a_notifier_url_stops_train_and_sweep_before_anything_is_written(make_recipe, tmp_path, capsys):
    notify = {"notifiers": [{"type": "webhook", "url": "https://hooks.example/x?token=t0k3n-5ecret"}]}
    recipe = make_recipe(notify=notify)
    assert main(["train", str(recipe)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "notify.notifiers[0] (webhook): url: has a secret in its query" in error
    assert "t0k3n-5ecret" not in error and not (tmp_path / "run").exists()
    sweep = tmp_path / "sweep"
    argv = ["sweep", str(recipe), "--grid", "training.learning_rate=0.01,0.02", "--output-dir", str(sweep)]
    assert main(argv) == 2
    assert "url_env" in capsys.readouterr().err and not sweep.exists()


class AlwaysFailing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.server.hits += 1
        self.send_error(500)

    def log_message(self, *args) -> None:
        pass


def test_retries_never_delay_the_exit_beyond_the_limit(tmp_path, caplog):
    assert exit_wait_s(10.0, 12, 1) == MAX_EXIT_WAIT_S  # about an hour of back-off before: now one minute at most
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlwaysFailing)
    server.hits = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        config = NotifyConfig(notifiers=[NotifierConfig(type="webhook", url=url)], retries=12, timeout_s=0.1)
        callback = NotifyCallback(config, tmp_path)
        assert callback.dispatcher.exit_wait_s == pytest.approx(1.3)  # 0.1 s × 13 tries
        started = time.monotonic()
        callback.run_end({"test": {"accuracy": 0.5}})
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert 1.0 < elapsed < 2.5  # tries at 0 s and 1 s (back-off 1 s), then the limit: 1.3 s
    assert server.hits == 2
    assert "notification run_end to webhook abandoned: the 1.3 s allowed" in caplog.text
