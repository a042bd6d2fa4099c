"""End to end through ``hfnlp train``: a tiny model learns, the run folder is complete, resume reuses the
tokenizer, and the saved model predicts identically in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hfnlp.cli import main
from tests.conftest import make_sentiment_rows, write_csv

FAST = [
    "--set",
    "training.report_to=[]",
    "--set",
    "training.disable_tqdm=true",
    "--set",
    "training.logging_steps=5",
]


def write_recipe(tmp_path: Path, data_file: Path, model: dict, **training) -> Path:
    recipe = {
        "task": "text-classification",
        "output_dir": str(tmp_path / "run"),
        "data": {"train_file": str(data_file), "label_names": ["negative", "positive"]},
        "tokenizer": {"level": "word", "max_length": 40},
        "model": model,
        "training": {"num_train_epochs": 4, "per_device_train_batch_size": 32, "learning_rate": 0.01, **training},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("trained")
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(800))
    recipe = write_recipe(tmp_path, data, {"type": "text_cnn", "embedding_dim": 32, "num_filters": 16})
    assert main(["train", str(recipe), *FAST]) == 0
    return tmp_path / "run"


def test_tiny_model_learns_and_writes_a_complete_run_folder(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9  # chance is 0.5
    for name in (
        "recipe.yaml",
        "classification_report.txt",
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "curves.png",
        "tokenizer/tokenizer.json",
    ):
        assert (trained_run / name).is_file(), name
    model = trained_run / "model"
    config = json.loads((model / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert "AutoModelForSequenceClassification" in config["auto_map"]
    assert (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()
    assert not list(model.glob("*.bin")), "no pickles in a shareable model folder"


@pytest.mark.slow
def test_saved_model_predicts_identically_in_a_fresh_process(trained_run, tmp_path):
    from hfnlp.pipelines.text_classification import classify, load_text_classifier

    texts = ["the food was great and fresh", "awful cold order", "my order today was slow and stale"]
    in_process = classify(load_text_classifier(trained_run / "model"), texts)
    result = subprocess.run(
        [sys.executable, "-m", "hfnlp", "predict", str(trained_run / "model"), *texts],
        capture_output=True,
        text=True,
        check=True,
    )
    fresh = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [p["label"] for p in fresh] == [p["label"] for p in in_process] == ["positive", "negative", "negative"]
    assert [p["score"] for p in fresh] == [round(float(p["score"]), 6) for p in in_process]


def test_resume_reuses_the_saved_tokenizer_even_when_the_data_changed(tmp_path, capsys):
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(300))
    recipe = write_recipe(tmp_path, data, {"type": "fasttext", "embedding_dim": 16}, num_train_epochs=1)
    assert main(["train", str(recipe), *FAST]) == 0
    tokenizer_file = tmp_path / "run" / "tokenizer" / "tokenizer.json"
    vocabulary = tokenizer_file.read_bytes()
    steps = json.loads((tmp_path / "run" / "metrics.json").read_text())["global_step"]

    # New words and another row order would give another vocabulary if the tokenizer were rebuilt.
    write_csv(data, [(f"zebra quokka {text}", label) for text, label in reversed(make_sentiment_rows(300))])
    assert main(["train", str(recipe), *FAST]) == 2  # refuses to overwrite a run without --resume
    assert main(["train", str(recipe), "--resume", "--set", "training.num_train_epochs=2", *FAST]) == 0
    assert tokenizer_file.read_bytes() == vocabulary
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert resumed["global_step"] == 2 * steps

    capsys.readouterr()
    assert main(["train", str(recipe), "--resume", "--set", "tokenizer.vocab_size=50", *FAST]) == 2
    assert "holds a tokenizer trained with other settings (vocab_size differ)" in capsys.readouterr().err
