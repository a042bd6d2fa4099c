"""``hfnlp push``: clear errors offline, without a token or without a reachable Hub (the folder untouched), and
a real HTTP exchange with a local stand-in for the Hub that receives every file of the folder."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants

from hfnlp.cli import main
from tests.hub.conftest import QUIET, TEXT_MODELS

REPO_ID = "someone/tiny-textcnn"


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def online(monkeypatch, tmp_path):
    """The in-process huggingface_hub in online mode, with no stored login."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)


def test_push_offline_is_a_clear_error_and_leaves_the_folder_intact(run_of, capsys):
    run = run_of("text_cnn")
    before = folder_digest(run)
    assert constants.HF_HUB_OFFLINE  # tests run with HF_HUB_OFFLINE=1
    assert main(["push", str(run), "--repo-id", REPO_ID]) == 2
    error = capsys.readouterr().err
    assert "offline mode (HF_HUB_OFFLINE=1)" in error and "is unchanged" in error
    assert folder_digest(run) == before


def test_push_without_a_token_is_a_clear_error(run_of, online, capsys):
    assert main(["push", str(run_of("text_cnn") / "model"), "--repo-id", REPO_ID]) == 2
    assert "no Hugging Face token: set HF_TOKEN" in capsys.readouterr().err


def test_push_to_an_unreachable_hub_is_a_clear_error(run_of, online, monkeypatch, capsys):
    run = run_of("text_cnn")
    before = folder_digest(run)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert main(["push", str(run), "--repo-id", REPO_ID]) == 2
    error = capsys.readouterr().err
    assert f"cannot reach the Hub at http://127.0.0.1:{port}" in error and "is unchanged" in error
    assert folder_digest(run) == before


class FakeHub(BaseHTTPRequestHandler):
    """Just enough of the Hub API for ``create_repo``, ``create_branch`` and ``upload_folder`` (which validates
    README.md's metadata, asks ``preupload`` how to send each file, then posts the ``commit``): every file is
    declared a regular (non-LFS) upload, so its content arrives base64-encoded in the commit."""

    requests: list[tuple[str, str, dict]] = []
    files: dict[str, bytes] = {}

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?")[0]
        auth = self.headers.get("Authorization", "")
        prefix = f"/api/models/{REPO_ID}/"
        if path == "/api/validate-yaml":  # upload_folder checks README.md's metadata first
            content = json.loads(body)["content"]
            metadata = yaml.safe_load(content.split("---")[1])
            self.requests.append(("validate", auth, metadata))
            missing = [key for key in ("library_name", "pipeline_tag", "model-index") if key not in metadata]
            self.reply({"errors": [{"message": f"missing {key}"} for key in missing], "warnings": []})
        elif path == "/api/repos/create":
            payload = json.loads(body)
            self.requests.append(("create", auth, payload))
            self.reply({"url": f"http://{self.headers['Host']}/{payload['organization']}/{payload['name']}"})
        elif path.startswith(prefix + "branch/"):
            self.requests.append(("branch", auth, {"branch": path.removeprefix(prefix + "branch/")}))
            self.reply({})
        elif path.startswith(prefix + "preupload/"):
            files = json.loads(body)["files"]
            self.requests.append(("preupload", auth, {"revision": path.removeprefix(prefix + "preupload/")}))
            self.reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        elif path.startswith(prefix + "commit/"):
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            self.requests.append(("commit", auth, {"revision": path.removeprefix(prefix + "commit/"), **header}))
            for line in lines:
                if line["key"] == "file":
                    self.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            url = f"http://{self.headers['Host']}/{REPO_ID}/commit/{'0' * 40}"
            self.reply({"commitUrl": url, "commitOid": "0" * 40})
        else:
            self.requests.append(("unexpected", auth, {"path": self.path}))
            self.reply({"error": "not implemented"}, status=404)

    def reply(self, payload: dict, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.slow
def test_push_uploads_every_file_of_the_folder_to_the_hub_api(run_of):
    run = run_of("text_cnn")
    folder = run / "model"
    before = folder_digest(run)
    FakeHub.requests, FakeHub.files = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    # HF_ENDPOINT is read when huggingface_hub is imported: a fresh process, online, pointed at the local server.
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}", "HF_HUB_OFFLINE": "0"}
    env.update(HF_TOKEN="hf_test_token", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "hfnlp", "push", str(run), "--repo-id", REPO_ID, "--private", "--revision", "dev"],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert result.returncode == 0, (result.stderr[-3000:], FakeHub.requests)
    kinds = [kind for kind, _, _ in FakeHub.requests]
    assert kinds == ["create", "branch", "validate", "preupload", "commit"], FakeHub.requests
    assert {auth for _, auth, _ in FakeHub.requests} == {"Bearer hf_test_token"}
    create = FakeHub.requests[0][2]
    assert (create["organization"], create["name"], create["visibility"]) == ("someone", "tiny-textcnn", "private")
    assert FakeHub.requests[1][2]["branch"] == "dev" and FakeHub.requests[4][2]["revision"] == "dev"
    assert FakeHub.requests[2][2]["pipeline_tag"] == "text-classification"

    local = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert FakeHub.files.keys() == local.keys()
    assert all(FakeHub.files[name] == local[name] for name in local if name != "README.md")
    # The pushed card's snippet loads the repo; the local card keeps the local path.
    pushed_card = FakeHub.files["README.md"].decode()
    assert f"model='{REPO_ID}'" in pushed_card and f"model='{REPO_ID}'" not in local["README.md"].decode()
    assert folder_digest(run) == before
    assert f"pushed {folder} to {REPO_ID}" in result.stdout


def test_a_recipe_that_pushes_at_the_end_of_the_run_keeps_the_model_when_the_push_fails(reviews_csv, tmp_path, capsys):
    recipe = {
        "task": "text-classification",
        "output_dir": str(tmp_path / "run"),
        "data": {"train_file": str(reviews_csv), "label_names": ["negative", "positive"]},
        "tokenizer": {"level": "word", "max_length": 32},
        "model": TEXT_MODELS["fasttext"],
        "training": {**QUIET, "num_train_epochs": 1, "per_device_train_batch_size": 64},
        "hub": {"push_to_hub": True, "repo_id": REPO_ID},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert main(["train", str(path)]) == 2  # offline: the push fails with a clear error, after the run
    error = capsys.readouterr().err
    assert "offline mode" in error and f"hfnlp push {tmp_path / 'run'} --repo-id {REPO_ID}" in error
    card = (tmp_path / "run" / "model" / "README.md").read_text(encoding="utf-8")
    assert f"model='{REPO_ID}'" in card  # rendered for the repo it was meant for


@pytest.mark.parametrize("kind", ["empty folder", "file", "missing"])
def test_push_of_something_that_is_not_a_model_folder_is_one_line(kind, tmp_path, capsys):
    path = tmp_path / "thing"
    if kind == "empty folder":
        path.mkdir()
    elif kind == "file":
        path.write_text("not a model", encoding="utf-8")
    assert main(["push", str(path), "--repo-id", REPO_ID]) == 2
    err = capsys.readouterr().err
    assert err.count("hfnlp: error:") == 1 and "Traceback" not in err
    missing = f"model folder not found: {path}"  # a path that is not there, as every command that takes a model says
    assert (missing if kind == "missing" else f"{path} is neither a model folder") in err
