"""``hfnlp serve``: safe defaults (loopback, a token), one-line refusals before the port is bound, and a real
server in a fresh process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from hfnlp.cli import build_parser, main
from hfnlp.errors import HfnlpError
from hfnlp.serving.server import TOKEN_ENV, ServeOptions, bind_socket, server_token, uvicorn_config
from tests.commands.conftest import assert_one_line_error
from tests.serving.conftest import TOKEN, bearer

ROOT = Path(__file__).resolve().parents[2]


def test_the_server_listens_on_loopback_unless_told_otherwise():
    args = build_parser().parse_args(["serve", "some/model"])
    assert (args.host, args.port, args.token_env, args.batching, args.backend) == (
        "127.0.0.1", 8000, TOKEN_ENV, True, "torch"
    )  # fmt: skip
    assert ServeOptions("m").host == "127.0.0.1"
    assert uvicorn_config(object()).host == "127.0.0.1"
    assert uvicorn_config(object(), "0.0.0.0", 9).host == "0.0.0.0"


def test_the_token_comes_from_the_environment_or_is_generated(monkeypatch):
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    assert server_token("MY_TOKEN") == (TOKEN, False)
    monkeypatch.delenv("MY_TOKEN")
    first, generated = server_token("MY_TOKEN")
    assert generated and len(first) >= 40 and server_token("MY_TOKEN")[0] != first
    for bad in ("", "  ", " padded"):
        monkeypatch.setenv("MY_TOKEN", bad)
        with pytest.raises(HfnlpError, match=r"\$MY_TOKEN is empty or has surrounding whitespace"):
            server_token("MY_TOKEN")


@pytest.mark.parametrize(
    ("argv", "parts"),
    [
        (["serve", "/no/such/model"], ("model folder not found: /no/such/model",)),
        (["serve", "MODEL", "--max-batch-size", "0"], ("--max-batch-size must be at least 1",)),
        (["serve", "MODEL", "--max-wait-ms", "nan"], ("--max-wait-ms",)),
        (["serve", "MODEL", "--port", "70000"], ("--port 70000",)),
    ],
)
def test_mistakes_are_refused_in_one_line(model_folder, argv, parts, capsys):
    argv = [str(model_folder) if part == "MODEL" else part for part in argv]
    assert main(argv) == 2
    assert_one_line_error(capsys, *parts)


def test_a_port_in_use_is_refused_in_one_line(model_folder, capsys, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with bind_socket("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", str(model_folder), "--port", str(port)]) == 2
    assert_one_line_error(capsys, f"127.0.0.1:{port} is in use", "choose another --port")


def test_onnx_serves_text_classifiers_only(image_model_folder, capsys):
    assert main(["serve", str(image_model_folder), "--backend", "onnx"]) == 2
    assert_one_line_error(capsys, "--backend onnx serves text classifiers only", "image-classification")


def start_server(model: Path, *options: str) -> tuple[subprocess.Popen, str, str]:
    """``hfnlp serve`` in a fresh process on a free port, without a token in its environment; ``(process, base
    URL, the token it printed)`` once /health answers."""
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "hfnlp", "serve", str(model), "--port", "0", *options],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = token = None
    lines = []
    deadline = time.monotonic() + 120
    while (url is None or token is None) and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        url = url or next(iter(re.findall(r" on (http://\S+) ", line)), None)
        token = token or next(iter(re.findall(r"Authorization: Bearer (\S+)", line)), None)
    assert url and token, "".join(lines)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").json()["ready"]:
                return process, url, token
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the server did not answer /health")


@pytest.mark.slow
def test_a_served_model_answers_an_authorised_request_and_stops_cleanly(model_folder, tmp_path):
    process, url, token = start_server(model_folder)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.post(f"{url}/predict", json={"inputs": "good food"}).status_code == 401
        response = httpx.post(f"{url}/predict", json={"inputs": "good food"}, headers=bearer(token))
        assert response.status_code == 200
        assert response.json()["predictions"][0][0]["label"] in ("negative", "positive")
        assert httpx.get(f"{url}/docs").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then hands the signal on: Ctrl-C ends hfnlp as an interruption (130).
    assert process.returncode == 130 and "Application shutdown complete" in rest, rest
    assert token not in rest  # shown once, at start-up
    assert not any(token in path.read_text(errors="ignore") for path in model_folder.rglob("*") if path.is_file())


@pytest.mark.slow
def test_the_onnx_backend_gives_the_torch_predictions(model_folder):
    from fastapi.testclient import TestClient

    from hfnlp.serving.app import create_app
    from hfnlp.serving.predictors import load_predictor

    texts = ["the food was great and fresh", "awful cold order", "my order today"]
    answers = {}
    for backend in ("torch", "onnx"):
        with TestClient(create_app(load_predictor(str(model_folder), backend), TOKEN, "model")) as client:
            assert client.get("/health").json()["backend"] == backend
            response = client.post("/predict", json={"inputs": texts, "top_k": 2}, headers=bearer())
            answers[backend] = response.json()["predictions"]
    for torch_answer, onnx_answer in zip(answers["torch"], answers["onnx"], strict=True):
        assert [p["label"] for p in torch_answer] == [p["label"] for p in onnx_answer]
        assert [p["score"] for p in torch_answer] == pytest.approx([p["score"] for p in onnx_answer], abs=1e-5)
    assert not (model_folder / "onnx").exists()  # exported into a temporary folder, not into the model's
