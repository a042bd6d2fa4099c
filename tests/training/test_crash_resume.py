"""A run killed with SIGKILL, in the middle of an epoch and while writing a checkpoint, resumes with ``--resume``
from its last complete checkpoint and ends exactly where an uninterrupted run with the same seed ends; a disk that
fills up while a checkpoint is written stops the run with a clear error and the previous checkpoint intact."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import make_sentiment_rows, write_csv

CRASHING_TRAIN = Path(__file__).with_name("crashing_train.py")
REPO = Path(__file__).resolve().parents[2]


def write_recipe(tmp_path: Path, name: str, data_file: Path, **model) -> Path:
    recipe = {
        "task": "text-classification",
        "output_dir": str(tmp_path / name),
        "data": {"train_file": str(data_file), "label_names": ["negative", "positive"]},
        "tokenizer": {"level": "word", "max_length": 32},
        # Dropout and a random sampler: both need their RNG state back for the resumed run to match.
        "model": {"type": "text_rnn", "cell": "gru", "embedding_dim": 16, "hidden_size": 16, "dropout": 0.3, **model},
        "training": {
            "num_train_epochs": 3,
            "per_device_train_batch_size": 16,  # 320 training rows: 20 steps per epoch
            "learning_rate": 0.01,
            "eval_strategy": "steps",
            "eval_steps": 15,  # checkpoints at steps 15 and 45 fall in the middle of an epoch
            "save_total_limit": 3,
            "report_to": [],
            "disable_tqdm": True,
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def hfnlp_train(
    recipe: Path, *args: str, crash: tuple[str, int] | None = None, max_file_bytes: int | None = None
) -> subprocess.CompletedProcess:
    entry = [str(CRASHING_TRAIN), crash[0], str(crash[1])] if crash else ["-m", "hfnlp"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def limit_file_size() -> None:
        # A write past RLIMIT_FSIZE fails (EFBIG) the way a write to a full disk fails (ENOSPC); ignoring SIGXFSZ
        # turns the signal into that error. Unlike a small tmpfs, this needs no privileges.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, *entry, "train", str(recipe), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        preexec_fn=limit_file_size if max_file_bytes else None,
    )


def evaluations(run: Path) -> list[tuple[int, float, float]]:
    state = json.loads((run / "checkpoint-60" / "trainer_state.json").read_text())
    return [(e["step"], e["eval_loss"], e["eval_accuracy"]) for e in state["log_history"] if "eval_loss" in e]


def test_sigkill_mid_epoch_and_mid_checkpoint_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(400))
    reference = hfnlp_train(write_recipe(tmp_path, "reference", data))
    assert reference.returncode == 0, reference.stderr[-3000:]

    recipe = write_recipe(tmp_path, "crashed", data)
    run = tmp_path / "crashed"
    killed = hfnlp_train(recipe, crash=("step", 22))  # step 2 of epoch 2; last checkpoint: 15, mid epoch 1
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-15"]

    # Resumed from 15, then killed while checkpoint-45 is half written.
    killed = hfnlp_train(recipe, "--resume", crash=("checkpoint", 45))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (run / "checkpoint-45" / "model.safetensors").exists()
    assert not (run / "checkpoint-45" / "trainer_state.json").exists()

    resumed = hfnlp_train(recipe, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-45: it was not completely written" in resumed.stderr
    assert (run / "checkpoint-45.incomplete").is_dir()

    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    actual = json.loads((run / "metrics.json").read_text())
    assert actual["global_step"] == expected["global_step"] == 60
    assert actual["best_validation_metric"] == expected["best_validation_metric"]
    timings = {"runtime", "samples_per_second", "steps_per_second"}
    assert {k: v for k, v in actual["test"].items() if k not in timings} == {
        k: v for k, v in expected["test"].items() if k not in timings
    }
    assert evaluations(run) == evaluations(tmp_path / "reference")


def test_a_disk_that_fills_up_while_a_checkpoint_is_written_stops_the_run_clearly_and_loses_nothing(tmp_path):
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(400))
    recipe = write_recipe(tmp_path, "run", data, embedding_dim=128, hidden_size=128)
    run = tmp_path / "run"
    one_epoch = ["--set", "training.eval_strategy=epoch", "--set", "training.num_train_epochs=1"]
    assert hfnlp_train(recipe, *one_epoch).returncode == 0
    previous = run / "checkpoint-20"
    before = {path.name: path.read_bytes() for path in previous.iterdir()}
    weights, optimizer = (previous / "model.safetensors").stat().st_size, (previous / "optimizer.pt").stat().st_size
    assert optimizer > 1.5 * weights  # so that a limit in between lets the weights through and stops the optimizer

    two_epochs = ["--set", "training.eval_strategy=epoch", "--set", "training.num_train_epochs=2"]
    full = hfnlp_train(recipe, "--resume", *two_epochs, max_file_bytes=(weights + optimizer) // 2)
    assert full.returncode == 2, full.stderr[-3000:]
    assert f"could not finish writing checkpoint-40 in {run}" in full.stderr
    assert "checkpoint-20 is intact: make room, then run the same command with --resume" in full.stderr
    assert "Traceback" not in full.stderr
    assert {path.name: path.read_bytes() for path in previous.iterdir()} == before

    resumed = hfnlp_train(recipe, "--resume", *two_epochs)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 40
