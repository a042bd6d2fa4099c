"""Every command that takes a model takes a Hub model id as well as a local folder, through one resolver
(:func:`hfnlp.pipelines.loading.resolve_model_folder`). Offline, through a Hub cache filled the way
huggingface_hub fills it (``models--user--name/snapshots/<commit>/`` and ``refs/main``): the real huggingface_hub
code reads it, nothing is mocked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants
from PIL import Image

from hfnlp.cli import main
from tests.commands.conftest import assert_one_line_error

REPO = "someuser/tiny-sentiment"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fill_hub_cache(cache: Path, repo_id: str, folder: Path) -> Path:
    """Put ``folder`` into the Hub cache ``cache`` as the main revision of model repo ``repo_id``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    return snapshot


@pytest.fixture
def hub_cache(model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline Hub cache holding the tiny text classifier as :data:`REPO`."""
    cache = tmp_path / "hub-cache"
    fill_hub_cache(cache, REPO, model_folder)
    # huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE once, at import: the environment of this process is
    # read already, so its constants are set (a fresh process reads the variables: see the slow test below).
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_predict_takes_a_cached_hub_id_offline(hub_cache, tmp_path, capsys):
    assert main(["predict", REPO, "good food", "awful cold order"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == ["good food", "awful cold order"]
    assert all(row["label"] in ("negative", "positive") for row in rows)

    table = tmp_path / "texts.csv"
    table.write_text("text\ngood food\n", encoding="utf-8")
    assert main(["predict", REPO, "--input", str(table)]) == 0
    assert json.loads(capsys.readouterr().out)["row"] == 1


def test_evaluate_takes_a_cached_hub_id_offline(hub_cache, tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("text,label\ngood food,positive\nawful cold order,negative\n", encoding="utf-8")
    assert main(["evaluate", REPO, "--data", str(data)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["rows"] == 2


def test_caption_resolves_a_cached_hub_id_then_checks_its_kind(hub_cache, tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(image)
    assert main(["caption", REPO, str(image)]) == 2
    line = assert_one_line_error(capsys, "holds a text-classification model", "image-captioning models")
    assert str(hub_cache) in line  # the snapshot was found, and it is what was checked


def test_push_takes_a_cached_hub_id_and_refuses_only_to_upload_offline(hub_cache, capsys):
    assert main(["push", REPO, "--repo-id", "someuser/copy"]) == 2
    assert_one_line_error(capsys, "cannot push to the Hub in offline mode")


def test_serve_and_demo_load_a_cached_hub_id_offline(hub_cache):
    """The server's predictor and the demo page load what the cached id holds (no port is bound)."""
    from hfnlp.demo import load_demo
    from hfnlp.serving.predictors import load_predictor

    predictor = load_predictor(REPO)
    [ranked] = predictor.forward(["good food"])
    assert predictor.task == "text-classification"
    assert predictor.finish(ranked, 1)[0]["label"] in ("negative", "positive")
    assert load_demo(REPO).title == "hfnlp text-classification: tiny-sentiment"


@pytest.mark.parametrize("command", ["predict", "evaluate", "caption", "push"])
def test_a_hub_id_not_in_the_cache_offline_is_one_line_saying_so(command, hub_cache, tmp_path, capsys):
    (tmp_path / "data.csv").write_text("text,label\ngood,positive\n", encoding="utf-8")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    arguments = {
        "predict": ["good"],
        "evaluate": ["--data", str(tmp_path / "data.csv")],
        "caption": [str(tmp_path / "photo.png")],
        "push": ["--repo-id", "someuser/copy"],
    }[command]
    assert main([command, "someuser/not-downloaded", *arguments]) == 2
    assert_one_line_error(capsys, "someuser/not-downloaded", "not in the local cache", "HF_HUB_OFFLINE=1")


@pytest.mark.parametrize("command", ["predict", "evaluate", "push"])
def test_a_local_path_that_does_not_exist_says_so(command, tmp_path, capsys):
    missing = str(tmp_path / "no" / "such-model")
    (tmp_path / "data.csv").write_text("text,label\ngood,positive\n", encoding="utf-8")
    arguments = {"predict": ["good"], "evaluate": ["--data", str(tmp_path / "data.csv")], "push": ["--repo-id", "a/b"]}
    assert main([command, missing, *arguments[command]]) == 2
    assert_one_line_error(capsys, f"model folder not found: {missing}")


def test_export_takes_a_local_run_only_and_says_what_to_do_with_a_hub_id(hub_cache, capsys):
    assert main(["export", REPO]) == 2
    assert_one_line_error(capsys, f"run folder not found: {REPO}", "predict, evaluate, caption and push take it")


@pytest.mark.slow  # a fresh interpreter
def test_predict_reads_the_hub_cache_that_the_environment_names(model_folder, tmp_path):
    cache = tmp_path / "hub-cache"
    fill_hub_cache(cache, REPO, model_folder)
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "hfnlp", "predict", REPO, "--batch-size", "2", "good food"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == "good food"
