"""``accelerate launch`` with two CPU processes (gloo) runs a text recipe: the data is sharded over both processes
(half the optimizer steps of one process), validation and test metrics are gathered over every row, and the run
writes one model folder.

accelerate 1.15 has no launcher for several local CPU processes without MPI: ``--cpu --num_processes 2`` starts a
single process unless ``--mpirun_hostfile`` is given. ``--multi_gpu`` starts the processes with torchrun; the
environment variable ``ACCELERATE_USE_CPU=true`` then makes Trainer's ``PartialState`` take the ``MULTI_CPU`` path
with the gloo backend (without it each process would train alone on the whole data set).
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import make_sentiment_rows, write_csv

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 2
TRAIN_ROWS, VALIDATION_ROWS, TEST_ROWS = 480, 101, 103  # odd evaluation sizes: a lost or doubled row shows
BATCH_SIZE, EPOCHS = 16, 2
LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Train a tiny TextCNN with ``accelerate launch --multi_gpu --num_processes 2`` on CPU; return its folders."""
    folder = tmp_path_factory.mktemp("accelerate")
    rows = make_sentiment_rows(TRAIN_ROWS + VALIDATION_ROWS + TEST_ROWS, seed=1)
    splits = {
        "train": rows[:TRAIN_ROWS],
        "validation": rows[TRAIN_ROWS : TRAIN_ROWS + VALIDATION_ROWS],
        "test": rows[TRAIN_ROWS + VALIDATION_ROWS :],
    }
    files = {split: write_csv(folder / f"{split}.csv", split_rows) for split, split_rows in splits.items()}
    recipe = {
        "task": "text-classification",
        "output_dir": str(folder / "run"),
        "data": {
            "train_file": str(files["train"]),
            "validation_file": str(files["validation"]),
            "test_file": str(files["test"]),
            "label_names": LABELS,
        },
        "tokenizer": {"level": "word", "max_length": 40},
        "model": {"type": "text_cnn", "embedding_dim": 16, "num_filters": 8},
        "training": {
            "num_train_epochs": EPOCHS,
            "per_device_train_batch_size": BATCH_SIZE,
            "per_device_eval_batch_size": 32,
            "learning_rate": 0.01,
            "report_to": [],
            "disable_tqdm": True,
            "logging_steps": 5,
            # fp32 as the single-process re-prediction below, which must match the gathered metrics exactly
            "mixed_precision": "no",
            "group_by_length": True,  # every process must draw the same bucketed order and take its own batches
        },
    }
    recipe_path = folder / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(PROCESSES), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "hfnlp", "train", str(recipe_path),
    ]  # fmt: skip
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(folder / "datasets-cache"),
    }
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=folder)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    print(f"accelerate launch with {PROCESSES} processes: {time.monotonic() - started:.0f} s")
    return {"run": folder / "run", "splits": splits}


def test_the_data_is_sharded_over_both_processes(two_process_run):
    run = two_process_run["run"]
    steps_per_epoch = math.ceil(TRAIN_ROWS / (BATCH_SIZE * PROCESSES))  # 15; one process alone would take 30
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == EPOCHS * steps_per_epoch
    assert metrics["epochs"] == EPOCHS
    checkpoints = sorted(path.name for path in run.glob("checkpoint-*"))
    assert checkpoints == [f"checkpoint-{steps_per_epoch}", f"checkpoint-{EPOCHS * steps_per_epoch}"]


def test_validation_and_test_metrics_are_gathered_over_every_row(two_process_run):
    run, splits = two_process_run["run"], two_process_run["splits"]
    metrics = json.loads((run / "metrics.json").read_text())
    # The saved model is the best checkpoint: predicting in this single process must reproduce the distributed
    # evaluation's accuracy over all rows (half of the rows, or padding duplicates, would give another count).
    correct = {split: _correct_predictions(run / "model", splits[split]) for split in ("validation", "test")}
    assert metrics["best_validation_metric"] == pytest.approx(correct["validation"] / VALIDATION_ROWS, abs=1e-9)
    assert metrics["test"]["accuracy"] == pytest.approx(correct["test"] / TEST_ROWS, abs=1e-9)
    report = json.loads((run / "classification_report.json").read_text())
    assert sum(report["report"][label]["support"] for label in LABELS) == TEST_ROWS
    with (run / "confusion_matrix.csv").open(encoding="utf-8") as handle:
        matrix = [[int(cell) for cell in row[1:]] for row in list(csv.reader(handle))[1:]]
    assert sum(map(sum, matrix)) == TEST_ROWS


def test_exactly_one_model_folder_is_saved(two_process_run):
    run = two_process_run["run"]
    weights = sorted(path.parent.relative_to(run).as_posix() for path in run.rglob("model.safetensors"))
    assert [folder for folder in weights if not folder.startswith("checkpoint-")] == ["model"]
    saved = {path.name for path in (run / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "recipe.yaml"} <= saved
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in saved), saved


@pytest.mark.parametrize(
    ("config", "distributed_type", "launcher"),
    [
        ("single-gpu", "NO", "simple"),
        ("multi-gpu", "MULTI_GPU", "multi_gpu"),
        ("multi-node", "MULTI_GPU", "multi_gpu"),
        ("deepspeed-zero2", "DEEPSPEED", "deepspeed"),
        ("fsdp", "FSDP", "fsdp"),
    ],
)
def test_shipped_accelerate_configs_pass_accelerates_own_validation(config, distributed_type, launcher):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    path = REPO / "recipes" / "accelerate" / f"{config}.yaml"
    assert load_config_from_file(str(path)).distributed_type == distributed_type  # unknown keys raise here
    parsed = launch_command_parser().parse_args(["--config_file", str(path), "-m", "hfnlp", "train", "recipe.yaml"])
    args, _, _ = _validate_launch_command(parsed)
    chosen = {"deepspeed": args.use_deepspeed, "fsdp": args.use_fsdp, "multi_gpu": args.multi_gpu}
    assert [name for name, used in chosen.items() if used] == ([] if launcher == "simple" else [launcher])
    assert args.module and args.training_script == "hfnlp"


def _correct_predictions(model_dir: Path, rows: list[tuple[str, str]]) -> int:
    """How many of ``rows`` the saved model classifies correctly, predicting in this process."""
    from transformers import AutoModelForSequenceClassification

    import hfnlp.models  # noqa: F401  (registers hfnlp's families with the Auto classes)
    from hfnlp.tokenization.text import load_saved_tokenizer

    tokenizer = load_saved_tokenizer(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    texts, labels = zip(*rows, strict=True)
    with torch.no_grad():
        batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        predictions = model(**batch).logits.argmax(dim=-1).tolist()
    return sum(model.config.id2label[p] == label for p, label in zip(predictions, labels, strict=True))
