"""A run killed with SIGKILL, in the middle of an epoch and while writing a checkpoint, resumes with ``--resume``
from its last complete checkpoint and ends exactly where an uninterrupted run with the same seed ends; a disk that
fills up while a checkpoint is written stops the run with a clear error and the previous checkpoint intact.

Every run goes through ``hfnlp train``. Only the runs that must die get a process of their own
(``crashing_train.py``, which fails at a chosen step, never a raced one); the uninterrupted reference, shared by the
tests, and the final resumes run in this process. All of them use one torch thread, so that their floating-point
results can be compared exactly.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hfnlp.cli import main
from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv

pytestmark = pytest.mark.slow

CRASHING_TRAIN = Path(__file__).with_name("crashing_train.py")
# 400 rows: 320 to train on, in 4 steps of 80 an epoch; 3 epochs. Checkpoints every 3 steps: 3 and 9 fall in the
# middle of an epoch. Few steps, since a step costs little next to starting a process and evaluating.
ROWS, BATCH_SIZE, EPOCHS, EVAL_STEPS = 400, 80, 3, 3
LAST_STEP = 12


def write_recipe(folder: Path, name: str, data_file: Path) -> Path:
    recipe = {
        "task": "text-classification",
        "output_dir": str(folder / name),
        "data": {"train_file": str(data_file), "label_names": ["negative", "positive"]},
        "tokenizer": {"level": "word", "max_length": 32},
        # Dropout and a random sampler: both need their RNG state back for the resumed run to match.
        "model": {"type": "text_rnn", "cell": "gru", "embedding_dim": 16, "hidden_size": 16, "dropout": 0.3},
        "training": {
            "num_train_epochs": EPOCHS,
            "per_device_train_batch_size": BATCH_SIZE,
            "learning_rate": 0.01,
            "eval_strategy": "steps",
            "eval_steps": EVAL_STEPS,
            "save_total_limit": None,  # every checkpoint stays, to compare with the reference run's
            "report_to": [],
            "disable_tqdm": True,
        },
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def train_in_process(recipe: Path, *args: str) -> int:
    with one_torch_thread():
        return main(["train", str(recipe), *args])


def train_until_failure(recipe: Path, *args: str, when: str, step: int) -> subprocess.CompletedProcess:
    """``hfnlp train`` in its own process, failing as ``crashing_train.py WHEN STEP`` says."""
    # One thread, as in `one_torch_thread`: the same thread count gives the same floating-point sums.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(CRASHING_TRAIN), when, str(step), "train", str(recipe), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def checkpoints(run: Path) -> list[str]:
    return sorted((p.name for p in run.glob("checkpoint-*")), key=lambda name: int(name.split("-")[1]))


def assert_ends_like(run: Path, reference: Path) -> None:
    """The run's final metrics and every evaluation on its way equal the uninterrupted reference run's."""
    expected = json.loads((reference / "metrics.json").read_text())
    actual = json.loads((run / "metrics.json").read_text())
    assert actual["global_step"] == expected["global_step"] == LAST_STEP
    assert actual["best_validation_metric"] == expected["best_validation_metric"]
    timings = {"runtime", "samples_per_second", "steps_per_second"}
    assert {k: v for k, v in actual["test"].items() if k not in timings} == {
        k: v for k, v in expected["test"].items() if k not in timings
    }
    assert evaluations(run) == evaluations(reference)


def evaluations(run: Path) -> list[tuple[int, float, float]]:
    state = json.loads((run / f"checkpoint-{LAST_STEP}" / "trainer_state.json").read_text())
    return [(e["step"], e["eval_loss"], e["eval_accuracy"]) for e in state["log_history"] if "eval_loss" in e]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("crash_data") / "reviews.csv", make_sentiment_rows(ROWS))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data_file: Path) -> Path:
    """The uninterrupted run, trained once for every test of this module."""
    folder = tmp_path_factory.mktemp("crash_reference")
    assert train_in_process(write_recipe(folder, "reference", data_file)) == 0
    run = folder / "reference"
    # It learns to the end, so that the final test metrics come from weights trained after every crash below.
    state = json.loads((run / f"checkpoint-{LAST_STEP}" / "trainer_state.json").read_text())
    assert Path(state["best_model_checkpoint"]).name == f"checkpoint-{LAST_STEP}"
    return run


def test_sigkill_mid_epoch_and_mid_checkpoint_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path, data_file: Path, reference: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recipe = write_recipe(tmp_path, "crashed", data_file)
    run = tmp_path / "crashed"
    killed = train_until_failure(recipe, when="step", step=5)  # step 1 of epoch 2; last checkpoint: 3, mid epoch 1
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert checkpoints(run) == ["checkpoint-3"]

    # Resumed from 3 (across the end of epoch 1), then killed while checkpoint-9 (mid epoch 3) is half written.
    killed = train_until_failure(recipe, "--resume", when="checkpoint", step=9)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert checkpoints(run) == ["checkpoint-3", "checkpoint-6", "checkpoint-9"]
    assert (run / "checkpoint-9" / "model.safetensors").exists()
    assert not (run / "checkpoint-9" / "trainer_state.json").exists()

    with caplog.at_level(logging.WARNING):
        assert train_in_process(recipe, "--resume") == 0  # from 6, mid epoch 2
    assert "checkpoint-9: it was not completely written" in caplog.text
    assert (run / "checkpoint-9.incomplete").is_dir()
    assert_ends_like(run, reference)


def test_a_disk_that_fills_up_while_a_checkpoint_is_written_stops_the_run_clearly_and_loses_nothing(
    tmp_path: Path, data_file: Path, reference: Path
) -> None:
    recipe = write_recipe(tmp_path, "run", data_file)
    run = tmp_path / "run"
    full = train_until_failure(recipe, when="full-disk", step=9)
    assert full.returncode == 2, full.stderr[-3000:]
    assert f"could not finish writing checkpoint-9 in {run}" in full.stderr
    assert "checkpoint-6 is intact: make room, then run the same command with --resume" in full.stderr
    assert "Traceback" not in full.stderr
    assert (run / "checkpoint-9.incomplete" / "model.safetensors").exists()
    # What resuming reads from checkpoint-6 is what the uninterrupted run wrote there (its trainer state differs
    # only in timings and paths, and is compared through the evaluations below).
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        assert (run / "checkpoint-6" / name).read_bytes() == (reference / "checkpoint-6" / name).read_bytes(), name

    assert train_in_process(recipe, "--resume") == 0
    assert_ends_like(run, reference)
