"""A run folder is never left broken, never shared, never mixed, never filled from diverged weights.

* Writes are atomic: a kill at any write of the final save leaves the previous complete model folder or the new one.
* A run locks its folder: a second ``hfnlp train`` on it is refused (exit 2) naming the first one's pid.
* ``--resume`` refuses a recipe that changes the model, its data or its labels, and records the changes it allows.
* A run whose loss stops being a number stops (exit 2) without writing a model folder or a card from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfnlp.cli import main
from hfnlp.errors import HfnlpError
from hfnlp.training.atomic import atomic_path, write_text
from hfnlp.training.run_folder import LOCK, RESUME_LOG, RunFolder
from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv

PAUSED_TRAIN = Path(__file__).with_name("paused_train.py")
# 200 rows: 160 to train on, 5 steps of 32 an epoch; a checkpoint at each epoch's end.
STEPS_PER_EPOCH = 5


def write_recipe(folder: Path, name: str = "run", **training: Any) -> Path:
    data_file = folder / "reviews.csv"
    if not data_file.exists():
        write_csv(data_file, make_sentiment_rows(200))
    recipe = {
        "task": "text-classification",
        "output_dir": str(folder / name),
        "data": {"train_file": str(data_file), "label_names": ["negative", "positive"]},
        "tokenizer": {"level": "word", "max_length": 32},
        "model": {"type": "text_cnn", "embedding_dim": 8, "num_filters": 4},
        "training": {
            "num_train_epochs": 1,
            "per_device_train_batch_size": 32,
            "learning_rate": 0.01,
            "report_to": [],
            "disable_tqdm": True,
            "logging_steps": 1,
            "mixed_precision": "no",
        }
        | training,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def train(recipe: Path, *args: str) -> int:
    with one_torch_thread():
        return main(["train", str(recipe), *args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----- atomic writes and the lock: units ------------------------------------------------------------------------


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as staged:
        staged.mkdir()
        (staged / "weights").write_text("half")
        raise RuntimeError("killed")
    assert (target / "weights").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with atomic_path(target) as staged:
        staged.mkdir()
        (staged / "weights").write_text("new")
    assert (target / "weights").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert write_text(tmp_path / "metrics.json", "{}").read_text() == "{}"


def test_a_second_owner_is_refused_and_a_dead_ones_lock_file_is_no_obstacle(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    # What a killed run leaves: the file, with its owner, but no lock (the system drops it with the process).
    (run.path / LOCK).write_text(json.dumps({"pid": 999999, "host": "h", "started": "t", "command": "c"}))
    with run.locked():
        assert json.loads((run.path / LOCK).read_text())["pid"] == os.getpid()
        with pytest.raises(HfnlpError, match=rf"is in use by another run \(pid {os.getpid()} on "), run.locked():
            pass
    with run.locked():  # released at the end of the block
        pass


def test_an_output_dir_that_is_a_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "taken").write_text("not a folder")
    assert main(["train", str(write_recipe(tmp_path)), "--set", f"output_dir={tmp_path / 'taken'}"]) == 2
    err = capsys.readouterr().err
    assert f"output_dir {tmp_path / 'taken'} is a file, not a folder" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "not a folder"


# ----- whole runs -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resume_refuses_another_run_and_records_the_changes_it_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = write_recipe(tmp_path)
    run = tmp_path / "run"
    assert train(recipe) == 0
    saved = (run / "recipe.yaml").read_bytes()
    model = digest(run / "model" / "model.safetensors")
    capsys.readouterr()

    for change, diff in [
        (
            "data.label_names=[positive,negative]",
            "data.label_names: ['negative', 'positive'] → ['positive', 'negative']",
        ),
        ("model.embedding_dim=16", "model.embedding_dim: 8 → 16"),
    ]:
        assert train(recipe, "--resume", "--set", change, "--set", "training.num_train_epochs=2") == 2
        err = capsys.readouterr().err
        assert diff in err and "new output_dir" in err and "num_train_epochs" not in err, err
        assert (run / "recipe.yaml").read_bytes() == saved  # byte-identical: nothing was rewritten
        assert digest(run / "model" / "model.safetensors") == model and not (run / RESUME_LOG).exists()

    assert (
        train(recipe, "--resume", "--set", "training.num_train_epochs=2", "--set", "training.learning_rate=0.001") == 0
    )
    (entry,) = [json.loads(line) for line in (run / RESUME_LOG).read_text().splitlines()]
    assert entry["checkpoint"] == f"checkpoint-{STEPS_PER_EPOCH}" and entry["time"]
    assert entry["changed"] == {
        "training.learning_rate": {"saved": 0.01, "new": 0.001},
        "training.num_train_epochs": {"saved": 1.0, "new": 2.0},
    }
    assert yaml.safe_load((run / "recipe.yaml").read_text())["training"]["learning_rate"] == 0.001
    # The new rate is used, not the one the checkpoint's optimizer state holds: on the saved 0.01 the linear
    # decay over 10 steps would stay above 0.001 until step 9.
    state = json.loads((run / f"checkpoint-{2 * STEPS_PER_EPOCH}" / "trainer_state.json").read_text())
    resumed = [e["learning_rate"] for e in state["log_history"] if e.get("step", 0) > STEPS_PER_EPOCH and "loss" in e]
    assert resumed and all(0 < rate < 0.001 for rate in resumed), resumed


def test_a_run_with_weights_only_checkpoints_is_not_resumed_with_a_fresh_optimizer(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = write_recipe(tmp_path, extra_args={"save_only_model": True})
    run = tmp_path / "run"
    assert train(recipe) == 0
    checkpoint = run / f"checkpoint-{STEPS_PER_EPOCH}"
    assert (checkpoint / "model.safetensors").exists() and not (checkpoint / "optimizer.pt").exists()
    capsys.readouterr()
    # Trainer would load these weights and start a new optimizer and schedule without a word.
    assert train(recipe, "--resume", "--set", "training.num_train_epochs=2") == 2
    err = capsys.readouterr().err
    assert "holds the weights only (training.extra_args.save_only_model: true)" in err and "Traceback" not in err
    assert not (run / f"checkpoint-{2 * STEPS_PER_EPOCH}").exists()


@pytest.mark.slow
def test_a_diverging_run_stops_without_writing_a_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # A learning rate far too high, though finite: what gets past the recipe checks (or a live `hfnlp control --lr`).
    fresh = write_recipe(tmp_path, "fresh", learning_rate=1e12, num_train_epochs=2)
    assert train(fresh) == 2
    err = capsys.readouterr().err
    assert "training diverged: the training loss stopped being a number at step " in err
    assert "no checkpoint was written before" in err and "Traceback" not in err
    assert not (tmp_path / "fresh" / "model").exists() and not list((tmp_path / "fresh").glob("checkpoint-*"))

    # Diverging after a good epoch: the good checkpoint and the previous model stay, and the error names them.
    recipe = write_recipe(tmp_path)
    run = tmp_path / "run"
    assert train(recipe) == 0
    model = {path.name: digest(path) for path in (run / "model").iterdir()}
    capsys.readouterr()
    assert (
        train(recipe, "--resume", "--set", "training.learning_rate=1e12", "--set", "training.num_train_epochs=3") == 2
    )
    err = capsys.readouterr().err
    assert f"`hfnlp export {run} --checkpoint {STEPS_PER_EPOCH}` gives its model" in err, err
    assert {path.name: digest(path) for path in (run / "model").iterdir()} == model
    assert [p.name for p in run.glob("checkpoint-*")] == [f"checkpoint-{STEPS_PER_EPOCH}"]


@pytest.mark.slow
def test_a_second_training_on_the_same_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = write_recipe(tmp_path)
    ready, release = tmp_path / "ready", tmp_path / "release"
    first = subprocess.Popen(
        [sys.executable, str(PAUSED_TRAIN), str(ready), str(release), "train", str(recipe)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read() if first.stdout else ""
            time.sleep(0.1)
        saved = (tmp_path / "run" / "recipe.yaml").read_bytes()
        assert train(recipe, "--resume") == 2
        err = capsys.readouterr().err
        assert f"is in use by another run (pid {first.pid} on " in err and "Traceback" not in err, err
        assert (tmp_path / "run" / "recipe.yaml").read_bytes() == saved
    finally:
        first.kill()  # SIGKILL: its lock goes with it
        first.communicate()
    assert train(recipe, "--resume") == 0  # the dead run's lock file is no obstacle


# ----- a kill at every write of the final save ------------------------------------------------------------------

# Audit events of writes (os.replace raises "os.rename"); ctypes calls cover renameat2.
WRITE_EVENTS = {
    "open",
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "shutil.copyfile",
    "shutil.rmtree",
    "ctypes.call_function",
}


def kill_at_write(point: int, run_dir: Path) -> None:
    """In this (forked) process, SIGKILL just before the ``point``-th write into ``run_dir`` (1-based); the weights
    file, written by safetensors' Rust code, counts as one write and is killed half written."""
    import transformers.modeling_utils

    prefix = str(run_dir)
    seen = 0

    def count() -> None:
        nonlocal seen
        seen += 1
        if seen == point:
            os.kill(os.getpid(), signal.SIGKILL)

    def is_write(event: str, args: tuple) -> bool:
        if event not in WRITE_EVENTS:
            return False
        if event == "open":
            path, mode, flags = args
            writing = (
                any(flag in mode for flag in "wax+")
                if isinstance(mode, str)
                else bool(flags & (os.O_WRONLY | os.O_RDWR))
            )
            return writing and str(path).startswith(prefix)
        if event == "ctypes.call_function":
            return any(isinstance(arg, bytes) and arg.decode(errors="replace").startswith(prefix) for arg in args[1])
        return any(str(arg).startswith(prefix) for arg in args if isinstance(arg, str | bytes | os.PathLike))

    def audit(event: str, args: tuple) -> None:
        if is_write(event, args):
            count()

    original_save = transformers.modeling_utils.safe_save_file

    def save_then_maybe_cut(tensors: Any, filename: str, *args: Any, **kwargs: Any) -> None:
        original_save(tensors, filename, *args, **kwargs)
        if seen + 1 == point:
            os.truncate(filename, os.path.getsize(filename) // 2)
        count()

    transformers.modeling_utils.safe_save_file = save_then_maybe_cut
    sys.addaudithook(audit)


def model_folder_state(model_dir: Path) -> dict[str, str]:
    """The folder's files and digests, once ``predict``'s loader has loaded and used it."""
    from hfnlp.pipelines.text_classification import classify, load_text_classifier

    (result,) = classify(load_text_classifier(model_dir), ["the food was great"])
    assert result is not None and result["label"] in {"negative", "positive"}
    return {path.name: digest(path) for path in model_dir.iterdir() if path.is_file()}


@pytest.mark.slow
def test_a_kill_at_any_write_of_the_final_save_leaves_a_complete_model_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import hfnlp.training.run

    recipe = write_recipe(tmp_path)
    run = tmp_path / "run"
    assert train(recipe) == 0
    pristine = tmp_path / "pristine-model"
    shutil.copytree(run / "model", pristine)
    old = model_folder_state(run / "model")
    states: list[tuple[int, dict[str, str]]] = []
    save = hfnlp.training.run.save_final_model

    def save_after_a_kill_at_each_write(*args: Any) -> Any:
        """Fork at each write point: the child saves until it is killed there; the parent then checks the folder
        and puts the old one back. Past the last write the child finishes, and the parent saves for real."""
        for point in range(1, 1000):
            child = os.fork()
            if child == 0:
                try:
                    kill_at_write(point, run)
                    save(*args)
                finally:
                    os._exit(0)
            _, status = os.waitpid(child, 0)
            if os.WIFEXITED(status):  # past the last write
                break
            assert os.WTERMSIG(status) == signal.SIGKILL
            states.append((point, model_folder_state(run / "model")))
            shutil.rmtree(run / "model")
            shutil.copytree(pristine, run / "model")
        return save(*args)

    monkeypatch.setattr(hfnlp.training.run, "save_final_model", save_after_a_kill_at_each_write)
    assert train(recipe, "--resume", "--set", "training.num_train_epochs=2") == 0
    new = model_folder_state(run / "model")
    assert new["model.safetensors"] != old["model.safetensors"] and "README.md" in new
    # Every kill left the complete old folder or the complete new one (its card included): before the folder is put
    # in place the old one, from then on the new one.
    outcomes = ["old" if state == old else "new" if state == new else state for _, state in states]
    swapped = outcomes.index("new") if "new" in outcomes else len(outcomes)
    assert outcomes == ["old"] * swapped + ["new"] * (len(outcomes) - swapped), list(enumerate(outcomes, start=1))
    assert 5 < swapped < len(outcomes)
