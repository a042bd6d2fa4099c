"""``accelerate launch`` with two CPU processes (gloo) runs a recipe of every task: the data is sharded over both
processes (half the optimizer steps of one process), validation and test metrics are gathered over every row, only
the main process writes run files, and the run ends with one model folder.

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
    return {"run": launch(folder, recipe), "splits": splits}


# Imported first by every process of the launch (PYTHONPATH): in the processes of rank 1 and up, each file opened for
# writing inside the run folder is logged, except Trainer's per-process RNG state, which is theirs by design.
WRITE_GUARD = """
import builtins, io, os

_RUN, _LOG = os.environ["HFNLP_TEST_RUN_DIR"], os.environ["HFNLP_TEST_WRITE_LOG"]
if os.environ.get("RANK", "0") != "0":
    _open = builtins.open

    def _logging_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and any(flag in mode for flag in "wax+"):
            path = os.path.abspath(os.fspath(file))
            if path.startswith(_RUN) and not os.path.basename(path).startswith("rng_state_"):
                with _open(_LOG, "a") as log:
                    log.write(path + "\\n")
        return _open(file, mode, *args, **kwargs)

    builtins.open = io.open = _logging_open
"""


def launch(folder: Path, recipe: dict) -> Path:
    """``hfnlp train`` of ``recipe`` under ``accelerate launch --multi_gpu --num_processes 2`` on CPU; asserts that it
    succeeds and that no process but the main one wrote into the run folder; returns the run folder."""
    recipe_path = folder / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    guard = folder / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(WRITE_GUARD)
    write_log = folder / "writes-by-other-processes.log"
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
        "PYTHONPATH": os.pathsep.join(filter(None, [str(guard), str(REPO), os.environ.get("PYTHONPATH")])),
        "HFNLP_TEST_RUN_DIR": str((folder / "run").resolve()),
        "HFNLP_TEST_WRITE_LOG": str(write_log),
    }
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=folder)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    print(f"accelerate launch with {PROCESSES} processes: {time.monotonic() - started:.0f} s")
    written = write_log.read_text().splitlines() if write_log.exists() else []
    assert not written, f"processes other than the main one wrote run files: {sorted(set(written))[:10]}"
    return folder / "run"


@pytest.mark.slow
def test_the_data_is_sharded_over_both_processes(two_process_run):
    run = two_process_run["run"]
    steps_per_epoch = math.ceil(TRAIN_ROWS / (BATCH_SIZE * PROCESSES))  # 15; one process alone would take 30
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == EPOCHS * steps_per_epoch
    assert metrics["epochs"] == EPOCHS
    checkpoints = sorted(path.name for path in run.glob("checkpoint-*"))
    assert checkpoints == [f"checkpoint-{steps_per_epoch}", f"checkpoint-{EPOCHS * steps_per_epoch}"]


@pytest.mark.slow
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


@pytest.mark.slow
def test_exactly_one_model_folder_is_saved(two_process_run):
    run = two_process_run["run"]
    assert_one_model_folder(run, {"tokenizer.json"})


def assert_one_model_folder(run: Path, task_files: set[str]) -> None:
    weights = sorted(path.parent.relative_to(run).as_posix() for path in run.rglob("model.safetensors"))
    assert [folder for folder in weights if not folder.startswith("checkpoint-")] == ["model"]
    saved = {path.name for path in (run / "model").iterdir()}
    assert {"config.json", "model.safetensors", "recipe.yaml", *task_files} <= saved
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in saved), saved


@pytest.mark.slow
@pytest.mark.parametrize("task", ["image-classification", "image-captioning"])
def test_image_tasks_write_from_the_main_process_and_save_one_model(task, tmp_path):
    from hfnlp.data.synthetic_images import write_shapes_folder

    training = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "report_to": [], "disable_tqdm": True}
    if task == "image-classification":
        recipe = {
            "data": {"train_file": str(write_shapes_folder(tmp_path / "shapes", per_class=12, size=32))},
            "model": {"type": "image_classifier", "architecture": "test_resnet", "pretrained": False, "image_size": 32},
        }
        task_files: set[str] = set()  # the image processor is described by config.json itself
    else:
        recipe = {
            "data": {"builtin": "synthetic_scenes", "builtin_size": 40, "image_size": 32},
            "tokenizer": {"max_length": 12},
            "model": {
                "type": "captioner",
                "encoder_name": "test_efficientnet",
                "encoder_pretrained": False,
                "embedding_dim": 16,
                "hidden_size": 16,
                "attention_dim": 16,
            },
        }
        training["metric_for_best_model"] = "bleu_4"
        task_files = {"tokenizer.json", "preprocessor_config.json", "generation_config.json"}
    recipe.update(task=task, output_dir=str(tmp_path / "run"), training={**training, "mixed_precision": "no"})
    run = launch(tmp_path, recipe)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"], metrics
    assert_one_model_folder(run, task_files)


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
