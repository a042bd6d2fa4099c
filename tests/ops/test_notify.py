"""Notifications through apprise, against a real local HTTP server that records what it receives (``json://``)."""

from __future__ import annotations

import json
import logging
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
from hfnlp.ops.notifiers import build_targets
from hfnlp.ops.notify import MAX_EXIT_WAIT_S, NotifyCallback, exit_wait_s
from hfnlp.recipe import NotifierConfig, NotifyConfig

HOOK_TOKEN = "hook-secret-8c1f"
PATH_SECRET = "path-secret-51d2"


class Recorder(ThreadingHTTPServer):
    """Records every POST (path, headers, JSON body) and answers 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.received: list[dict] = []
        self.address = f"127.0.0.1:{self.server_address[1]}"

    def bodies(self, path: str) -> list[dict]:
        return [item["body"] for item in self.received if item["path"] == path]


class RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append({"path": url.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

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


@pytest.fixture
def notify_url(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> str:
    """Two apprise URLs in one variable: a JSON hook with a bearer token, and one whose path is the secret."""
    value = (
        f"json://{recorder.address}/hook?+Authorization=Bearer%20{HOOK_TOKEN}, "
        f"json://{recorder.address}/bot/{PATH_SECRET}"
    )
    monkeypatch.setenv("HFNLP_NOTIFY_URL", value)
    return value


def test_epoch_end_and_run_end_reach_every_target_and_secrets_stay_out(
    make_recipe, recorder, notify_url, tmp_path, caplog, capsys
):
    caplog.set_level(logging.DEBUG)  # apprise logs the URLs it posts to at debug level: they must come out redacted
    recipe = make_recipe(notify={"notifiers": [{"url_env": "HFNLP_NOTIFY_URL"}], "on_epoch_end": True}, logging_steps=5)
    assert main(["train", str(recipe)]) == 0

    events = recorder.bodies("/hook")
    assert [event["type"] for event in events] == ["info", "info", "success"]
    assert [event["title"] for event in events][:2] == [
        "hfnlp run: epoch done at epoch 1, step 10",
        "hfnlp run: epoch done at epoch 2, step 20",
    ]
    assert events[2]["title"].startswith("hfnlp run: run finished at epoch 2")
    assert "eval_accuracy: " in events[0]["message"] and "test_accuracy: " in events[2]["message"]
    hook = next(item for item in recorder.received if item["path"] == "/hook")
    assert hook["headers"]["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert recorder.bodies(f"/bot/{PATH_SECRET}") == events

    # No secret anywhere in the run folder: recipe.yaml, model/recipe.yaml, the model card `hfnlp push` uploads, ...
    run = tmp_path / "run"
    written = b"".join(path.read_bytes() for path in run.rglob("*") if path.is_file())
    logs = caplog.text + "".join(capsys.readouterr())
    assert "notification run_end sent to notify.notifiers[0] (JSON)" in logs
    for secret in (HOOK_TOKEN, PATH_SECRET, notify_url):
        assert secret.encode() not in written and secret not in logs
    for recipe_copy in (run / "recipe.yaml", run / "model" / "recipe.yaml"):
        assert b"HFNLP_NOTIFY_URL" in recipe_copy.read_bytes()


def test_a_crash_is_notified_with_its_error(make_recipe, recorder, notify_url, monkeypatch):
    training_step = Trainer.training_step

    def crash_at_step_3(self, *args, **kwargs):
        if self.state.global_step == 3:
            raise RuntimeError("forced crash")
        return training_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", crash_at_step_3)
    recipe = make_recipe(notify={"notifiers": [{"url_env": "HFNLP_NOTIFY_URL"}]})
    assert main(["train", str(recipe)]) == 1  # not a user's mistake: an internal error, with its traceback
    (crash,) = recorder.bodies("/hook")
    assert crash["type"] == "failure" and crash["title"].endswith("CRASHED at epoch 0.3, step 3")
    assert "error: RuntimeError: forced crash" in crash["message"]


def test_training_completes_when_the_notification_server_is_down(make_recipe, caplog, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HFNLP_NOTIFY_URL", f"json://127.0.0.1:{port}/hook/{PATH_SECRET}")
    notify = {"notifiers": [{"url_env": "HFNLP_NOTIFY_URL"}], "retries": 1, "timeout_s": 2}
    recipe = make_recipe(notify=notify, num_train_epochs=1)
    assert main(["train", str(recipe)]) == 0
    assert json.loads((Path(recipe).parent / "run" / "metrics.json").read_text())["epochs"] == 1.0
    failures = [record.getMessage() for record in caplog.records if "notification run_end" in record.getMessage()]
    assert len(failures) == 2 and all("failed" in message for message in failures)
    assert PATH_SECRET not in caplog.text


def test_a_missing_variable_skips_its_target_and_an_unknown_url_is_refused_without_repeating_it(caplog):
    config = NotifyConfig(notifiers=[NotifierConfig(url_env="HFNLP_UNSET_URL")])
    targets, redact = build_targets(config, environ={})
    redact.remove()
    assert targets == [] and redact.secrets == []
    assert "HFNLP_UNSET_URL is not set; this target is skipped" in caplog.text
    config = NotifyConfig(notifiers=[NotifierConfig(url_env="HFNLP_NOTIFY_URL")])
    refusal = r"^notify.notifiers\[0\]: \$HFNLP_NOTIFY_URL holds a URL apprise does not know"
    with pytest.raises(RecipeError, match=refusal) as refused:
        build_targets(config, environ={"HFNLP_NOTIFY_URL": "https://hooks.example/x?token=s3cret-t0ken"})
    assert "s3cret-t0ken" not in str(refused.value)


def test_a_url_written_in_the_recipe_stops_train_and_sweep_before_anything_is_written(make_recipe, tmp_path, capsys):
    recipe = make_recipe(notify={"notifiers": [{"url_env": "tgram://123456:t0k3n-5ecret/987"}]})
    assert main(["train", str(recipe)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "notify.notifiers[0].url_env must be the name of an environment variable" in error
    assert "t0k3n-5ecret" not in error and not (tmp_path / "run").exists()
    sweep = tmp_path / "sweep"
    argv = ["sweep", str(recipe), "--grid", "training.learning_rate=0.01,0.02", "--output-dir", str(sweep)]
    assert main(argv) == 2
    assert "url_env must be the name" in capsys.readouterr().err and not sweep.exists()


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
        url = f"json://127.0.0.1:{server.server_address[1]}/hook"
        config = NotifyConfig(notifiers=[NotifierConfig(url_env="HFNLP_NOTIFY_URL")], retries=12, timeout_s=0.1)
        callback = NotifyCallback(config, tmp_path, environ={"HFNLP_NOTIFY_URL": url})
        assert callback.dispatcher.exit_wait_s == pytest.approx(1.3)  # 0.1 s × 13 tries
        started = time.monotonic()
        callback.run_end({"test": {"accuracy": 0.5}})
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert 1.0 < elapsed < 2.5  # tries at 0 s and 1 s (back-off 1 s), then the limit: 1.3 s
    assert server.hits == 2
    assert "notification run_end to notify.notifiers[0] (JSON) abandoned: the 1.3 s allowed" in caplog.text
