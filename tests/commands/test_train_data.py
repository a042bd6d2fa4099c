"""``hfnlp train --data FILE``: the auto mode end to end, and its arguments' mistakes (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfnlp.cli import main
from tests.commands.conftest import assert_one_line_error
from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv
from tests.models.test_text_models import load_with_remote_code

TINY = ["--set", "training.num_train_epochs=1", "--set", "training.report_to=[]", "--set", "training.disable_tqdm=true"]


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", make_sentiment_rows(200))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train"], "the following arguments are required: recipe (or --data FILE"),
        (["train", "{tmp}/recipe.yaml", "--data", "{csv}"], "argument --data: not allowed with argument recipe"),
    ],
)
def test_a_recipe_or_data_exactly_is_an_argument_error(capsys, tmp_path, data_csv, argv, message):
    with pytest.raises(SystemExit) as exit_:  # as argparse's own argument errors
        main([arg.format(tmp=tmp_path, csv=data_csv) for arg in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hfnlp train: error: ") and message in err


@pytest.mark.parametrize(
    ("argv", "parts"),
    [
        (["train", "--data", "{csv}", "--task", "ner"], ["--task 'ner'", "supports text-classification"]),
        (["train", "{tmp}/recipe.yaml", "--text-column", "text"], ["--text-column go with --data FILE"]),
        (["train", "{tmp}/recipe.yaml", "--time-budget", "5"], ["--time-budget go with --data FILE"]),
        (["train", "{tmp}/recipe.yaml", "--no-refit"], ["--no-refit go with --data FILE"]),
        (["train", "--data", "{csv}", "--time-budget", "0"], ["--time-budget 0: give a positive number"]),
        (["train", "--data", "{csv}", "--overfit-batch"], ["--overfit-batch checks one recipe"]),
        (["train", "--data", "{csv}", "--candidates", "nope"], ["--candidates nope: unknown; the candidates are"]),
        (["train", "--data", "{csv}", "--set", "output_dir=x"], ["with --data, choose the folder with --output-dir"]),
        (["train", "--data", "{tmp}/missing.csv"], ["missing.csv"]),
    ],
)
def test_a_mistake_is_one_line_and_exit_2_before_any_training(capsys, tmp_path, data_csv, argv, parts):
    (tmp_path / "recipe.yaml").write_text("task: text-classification\n")
    argv = [arg.format(tmp=tmp_path, csv=data_csv) for arg in argv]
    if "--data" in argv:
        argv += ["--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    assert_one_line_error(capsys, *parts)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_train_data_chooses_a_model_that_a_pipeline_loads(capsys, tmp_path, data_csv):
    out = tmp_path / "auto"
    with one_torch_thread():
        assert main(["train", "--data", str(data_csv), "--output-dir", str(out), *TINY]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2].startswith("test: {") and printed[-1] == f"model saved to {out}/model"
    record = json.loads((out / "candidates.json").read_text())
    trained = [c for c in record["candidates"] if c["status"] == "trained"]
    assert trained and record["chosen"] == max(trained, key=lambda c: c["validation"])["name"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chosen"]["name"] == record["chosen"] and metrics["candidates"] == record["candidates"]
    assert "accuracy" in metrics["test"] and (out / "recipe.yaml").is_file() and (out / "profile.txt").is_file()
    for candidate in record["candidates"]:
        assert (out / "candidates" / f"{candidate['name']}.yaml").read_text().startswith("# ")
    # Checkpoints hold the weights, not the optimizer's moments: every candidate's and the refit's.
    checkpoints = list((out / "candidates").glob("*/checkpoint-*"))
    assert checkpoints and all((c / "model.safetensors").exists() for c in checkpoints)
    assert not any((c / "optimizer.pt").exists() for c in checkpoints)
    # The candidates trained, then their ensemble, judged on validation like them.
    assert [c["name"] for c in trained][-1] == "ensemble" and len(trained) >= 3
    # Then the chosen one retrained on train + validation (the 1 epoch each had): the model put in place.
    refit = record["candidates"][-1]
    assert refit["status"] == "refit" and refit["name"] == f"{record['chosen']}-refit" and refit["validation"] is None
    assert metrics["refit"]["done"] and metrics["refit"]["run_dir"] == refit["run_dir"]
    assert metrics["test"] == json.loads((Path(refit["run_dir"]) / "metrics.json").read_text())["test"]
    assert (out / "recipe.yaml").read_text() == (Path(refit["run_dir"]) / "recipe.yaml").read_text()
    refit_recipe = (out / "recipe.yaml").read_text()
    assert "train_on_validation: true" in refit_recipe and "eval_strategy: 'no'" in refit_recipe

    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(out / "model"), trust_remote_code=True)
    predictions = classifier(["the food was great and fresh", "awful cold food, very late"])
    assert {prediction["label"] for prediction in predictions} <= {"negative", "positive"}
    ensemble = pipeline("text-classification", model=str(out / "candidates" / "ensemble" / "model"))
    assert len(ensemble(["the food was great and fresh"])) == 1

    # The chosen model and the ensemble, loaded in a fresh process without hfnlp (remote code), give the same logits.
    folders = [out / "model", out / "candidates" / "ensemble" / "model"]
    tokenizer = AutoTokenizer.from_pretrained(folders[0])
    batch = tokenizer(["the food was great and fresh", "awful cold food, very late"], padding=True)
    torch.save(torch.tensor(batch["input_ids"]), tmp_path / "input_ids.pt")
    expected = {}
    for folder in folders:
        model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
        with torch.no_grad():
            expected[folder] = model(torch.tensor(batch["input_ids"])).logits
    load_with_remote_code(tmp_path, folders)
    for folder, logits in expected.items():
        torch.testing.assert_close(torch.load(folder / "remote_logits.pt"), logits)

    # A rerun refuses to overwrite; with --resume, finished candidates are kept, not trained again.
    chosen_metrics = out / "candidates" / record["chosen"] / "metrics.json"
    finished = chosen_metrics.stat().st_mtime_ns
    assert main(["train", "--data", str(data_csv), "--output-dir", str(out), *TINY]) == 2
    assert_one_line_error(capsys, "pass --resume")
    assert main(["train", "--data", str(data_csv), "--output-dir", str(out), "--resume", *TINY]) == 0
    assert chosen_metrics.stat().st_mtime_ns == finished
    assert json.loads((out / "candidates.json").read_text())["chosen"] == record["chosen"]
