"""Broken or wrong model folders given to ``predict``, ``evaluate``, ``caption``, ``export`` and ``push``: one line
naming the folder, what is missing or broken and what to do; never a library traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from hfnlp.cli import main
from tests.commands.conftest import assert_one_line_error


def truncated(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return folder


def without_tokenizer(folder: Path) -> Path:
    for file in folder.glob("tokenizer*"):
        file.unlink()
    return folder


def with_config(content: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        (folder / "config.json").write_text(content, encoding="utf-8")
        return folder

    return write


BROKEN: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated weights": (truncated, "model.safetensors is truncated or corrupt"),
    "no weights": (lambda folder: (folder / "model.safetensors").unlink() or folder, "has no model weights"),
    "no tokenizer": (without_tokenizer, "has no tokenizer (tokenizer_config.json is missing)"),
    "config not JSON": (with_config('{"model_type": "hfnlp_fasttext",'), "config.json is damaged"),
    "another library's config": (with_config('{"architecture": "resnet50", "num_classes": 3}'), "has no model_type"),
    "a transformers model": (with_config('{"model_type": "bert"}'), "of type 'bert', not one of hfnlp's"),
}


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_broken_model_folder_is_one_line_naming_it(case, command, copy_of, tmp_path, capsys):
    breaks, message = BROKEN[case]
    folder = breaks(copy_of("model"))
    data = tmp_path / "data.csv"
    data.write_text("text,label\ngood food,positive\n", encoding="utf-8")
    arguments = ["good food"] if command == "predict" else ["--data", str(data)]
    assert main([command, str(folder), *arguments]) == 2
    assert_one_line_error(capsys, str(folder), message)


def test_a_run_folder_without_a_final_model_names_the_export_command(run_folder, capsys):
    (run_folder / "model" / "config.json").unlink()
    assert main(["predict", str(run_folder), "good food"]) == 2
    assert_one_line_error(capsys, "without a final model", f"hfnlp export {run_folder} --checkpoint 3")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("someone/not-downloaded", "offline mode (HF_HUB_OFFLINE=1)"),
        ("./no/such/folder", "model folder not found"),
        ("data.csv", "is a file, not a model folder"),
        (".", "neither a model folder"),
    ],
)
def test_a_model_that_is_not_there_is_one_line(model, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("data.csv").write_text("text\ngood\n", encoding="utf-8")
    assert main(["predict", model, "good food"]) == 2
    assert_one_line_error(capsys, message)


def test_export_refuses_a_broken_final_model_or_checkpoint_before_any_work(run_folder, capsys):
    truncated(run_folder / "model")
    assert main(["export", str(run_folder), "--onnx"]) == 2
    assert_one_line_error(capsys, f"{run_folder}/model/model.safetensors is truncated", "--checkpoint 3")
    assert not (run_folder / "model" / "onnx").exists()

    without_tokenizer(run_folder / "model")
    (run_folder / "model" / "model.safetensors").unlink()
    truncated(run_folder / "checkpoint-3")
    assert main(["export", str(run_folder), "--checkpoint", "3"]) == 2
    assert_one_line_error(capsys, "checkpoint-3/model.safetensors is truncated")


def test_export_refuses_a_final_model_without_its_tokenizer(run_folder, capsys):
    without_tokenizer(run_folder / "model")
    assert main(["export", str(run_folder), "--onnx"]) == 2
    assert_one_line_error(capsys, "has no tokenizer", f"hfnlp export {run_folder} --checkpoint 3")


def test_push_refuses_a_folder_that_cannot_be_loaded(run_folder, capsys):
    truncated(run_folder / "model")
    assert main(["push", str(run_folder), "--repo-id", "someone/model"]) == 2
    assert_one_line_error(capsys, "model.safetensors is truncated")


def test_caption_refuses_a_text_model_and_a_captioner_without_its_image_processor(copy_of, tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(image)
    assert main(["caption", str(copy_of("text")), str(image)]) == 2
    assert_one_line_error(capsys, "holds a text-classification model", "image-captioning models")

    # a captioner's config with the tokenizer but no preprocessor_config.json
    folder = copy_of("captioner")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "hfnlp_captioner"}), encoding="utf-8")
    assert main(["caption", str(folder), str(image)]) == 2
    assert_one_line_error(capsys, "has no image processor (preprocessor_config.json is missing)")
