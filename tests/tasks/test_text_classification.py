"""End to end through ``hfnlp train``: a tiny model learns, the run folder is complete, resume reuses the
tokenizer only for the same training data, and the saved model predicts identically in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from datasets import Dataset

from hfnlp.cli import main
from hfnlp.errors import DataError
from hfnlp.tasks.text_classification import tokenizer_for_run
from hfnlp.tokenization.text import SETTINGS_FILE, TRAIN_TEXTS_KEY, TextTokenizerConfig, texts_fingerprint
from hfnlp.training.run_folder import RunFolder
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


def test_predict_on_a_text_file_loads_neither_datasets_nor_transformers_pipelines(trained_run, tmp_path):
    """``hfnlp predict`` on a .txt file starts without the imports it does not need (datasets and pandas: 1.5 s;
    transformers' pipelines, which it never uses), and predicts what the pipeline predicts."""
    from hfnlp.pipelines.text_classification import classify, load_text_classifier

    texts = ["the food was great and fresh", "awful cold order"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    heavy = ["datasets", "pandas", "transformers.pipelines"]
    script = (
        "import sys\nfrom hfnlp.cli import main\n"
        f"status = main(['predict', {str(trained_run / 'model')!r}, '--input', {str(tmp_path / 'in.txt')!r}, "
        f"'--output', {str(output)!r}])\n"
        f"print('loaded', [name for name in {heavy!r} if name in sys.modules], status)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "loaded [] 0" in result.stdout
    pipeline = load_text_classifier(trained_run / "model")
    expected = pipeline(texts, truncation=True, top_k=1)
    assert classify(pipeline, texts) == [{"label": p[0]["label"], "score": p[0]["score"]} for p in expected]
    predicted = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [(p["label"], p["score"]) for p in predicted] == [(p[0]["label"], round(p[0]["score"], 6)) for p in expected]


def test_resume_reuses_the_saved_tokenizer_only_for_the_same_training_data(tmp_path, capsys):
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(300))
    recipe = write_recipe(tmp_path, data, {"type": "fasttext", "embedding_dim": 16}, num_train_epochs=1)
    assert main(["train", str(recipe), *FAST]) == 0
    tokenizer_file = tmp_path / "run" / "tokenizer" / "tokenizer.json"
    vocabulary = tokenizer_file.read_bytes()
    steps = json.loads((tmp_path / "run" / "metrics.json").read_text())["global_step"]

    assert main(["train", str(recipe), "--resume", "--set", "training.num_train_epochs=2", *FAST]) == 0
    assert tokenizer_file.read_bytes() == vocabulary
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert resumed["global_step"] == 2 * steps

    # New words and another row order: the saved vocabulary was not built from this data.
    write_csv(data, [(f"zebra quokka {text}", label) for text, label in reversed(make_sentiment_rows(300))])
    capsys.readouterr()
    assert main(["train", str(recipe), "--resume", "--set", "training.num_train_epochs=3", *FAST]) == 2
    assert "vocabulary was trained on other training data" in capsys.readouterr().err
    assert tokenizer_file.read_bytes() == vocabulary


def test_tokenizer_for_run_reuses_a_tokenizer_only_for_the_texts_it_was_trained_on(tmp_path, caplog):
    run = RunFolder(tmp_path / "run")
    config = TextTokenizerConfig(level="word", vocab_size=100)
    texts = [text for text, _ in make_sentiment_rows(50)]
    trained = tokenizer_for_run(run, config, texts)
    settings = json.loads((run.tokenizer_dir / SETTINGS_FILE).read_text())
    assert settings[TRAIN_TEXTS_KEY] == texts_fingerprint(texts) and settings["vocab_size"] == 100
    with caplog.at_level("INFO", logger="hfnlp.tasks.text_classification"):
        again = tokenizer_for_run(run, config, Dataset.from_dict({"text": texts})["text"])
    assert "reusing the tokenizer saved in" in caplog.text
    assert again.get_vocab() == trained.get_vocab()
    for changed in (texts[:-1], texts[::-1], [*texts[:-1], texts[-1] + "!"]):
        with pytest.raises(DataError, match="vocabulary was trained on other training data"):
            tokenizer_for_run(run, config, changed)
    assert texts_fingerprint(["a", "bc"]) != texts_fingerprint(["ab", "c"])
    with pytest.raises(DataError, match=r"trained with other settings \(vocab_size differ\)"):
        tokenizer_for_run(run, TextTokenizerConfig(level="word", vocab_size=50), texts)
