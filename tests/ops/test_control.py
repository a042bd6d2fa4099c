"""Live control: a real training in a subprocess steered through ``hfnlp control``, then resumed."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from hfnlp.cli import main
from hfnlp.errors import HfnlpError
from hfnlp.ops.control.channel import ControlChannel, ControlCommand
from hfnlp.ops.control.schedule import stretch_schedule
from tests.ops.pacing import wait_until

HERE = Path(__file__).parent


def learning_rates(run: Path) -> dict[int, float]:
    history = json.loads((run / "live_status.json").read_text())["log_history"]
    return {entry["step"]: entry["learning_rate"] for entry in history if "learning_rate" in entry}


@pytest.mark.slow
def test_lr_and_epochs_changed_live_take_effect_at_the_recorded_step_and_survive_resume(make_recipe, tmp_path):
    # 160 training rows, batches of 16: 10 steps per epoch; planned 8 epochs = 80 steps, linear decay from 0.01.
    recipe = make_recipe(rows=200, num_train_epochs=8, eval_strategy="epoch")
    run = tmp_path / "run"
    channel = ControlChannel(run)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    with (tmp_path / "train.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "paced_train.py"), "0.25", "train", str(recipe)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until(lambda: channel.status().get("global_step", 0) >= 2, 240, "the run to start training")
        assert main(["control", str(run), "--lr", "2e-3", "--epochs", "3"]) == 0
        wait_until(lambda: channel.status().get("global_step", 0) >= 12, 60, "the second epoch")
        assert main(["control", str(run), "--stop-after-epoch"]) == 0
        assert process.wait(timeout=120) == 0, (tmp_path / "train.log").read_text()[-3000:]
    finally:
        process.kill()

    lr_change, epochs_change, stop = channel.entries()
    step = lr_change["step"]
    assert (lr_change["action"], lr_change["old"], lr_change["new"], lr_change["source"]) == (
        "learning_rate",
        0.01,
        0.002,
        "cli",
    )
    assert (epochs_change["action"], epochs_change["old"], epochs_change["new"]) == ("num_train_epochs", 8.0, 3.0)
    assert epochs_change["step"] == step and lr_change["applied"] and epochs_change["applied"]
    assert (stop["action"], stop["new"], stop["source"]) == ("stop_after_epoch", 2.0, "cli") and 10 <= stop["step"] < 20

    # The run ended cleanly after epoch 2: evaluated, checkpointed, tested, saved.
    stopped = json.loads((run / "metrics.json").read_text())
    assert (stopped["global_step"], stopped["epochs"]) == (20, 2.0)
    assert (run / "checkpoint-20" / "trainer_state.json").is_file() and (run / "model" / "config.json").is_file()

    # Resuming keeps both changes: one more epoch (3, not 8), on the rescaled and re-timed schedule.
    assert main(["train", str(recipe), "--resume"]) == 0
    resumed = json.loads((run / "metrics.json").read_text())
    assert (resumed["global_step"], resumed["epochs"]) == (30, 3.0)
    rates = learning_rates(run)
    assert sorted(rates) == list(range(1, 31))
    ratio = (80 - step) / (30 - step)
    for k, rate in rates.items():  # the rate logged at step k is the one step k used: base × schedule(k - 1)
        x = k - 1
        expected = 0.01 * (80 - x) / 80 if k <= step else 0.002 * (80 - (step + (x - step) * ratio)) / 80
        assert rate == pytest.approx(expected, rel=1e-6), k
    assert [entry["action"] for entry in channel.entries()] == ["learning_rate", "num_train_epochs", "stop_after_epoch"]

    # A finished run resumed again trains no further step.
    assert main(["train", str(recipe), "--resume"]) == 0
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 30


class SubmitAtStep(TrainerCallback):
    """Plays a person typing ``hfnlp control`` while step ``step`` runs."""

    def __init__(self, run: Path, step: int, request: dict) -> None:
        self.channel, self.step, self.request = ControlChannel(run), step, request

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.channel.submit(ControlCommand.from_mapping(self.request, source="cli"))


def test_extending_epochs_really_trains_them_and_checkpoint_now_saves(make_recipe, tmp_path, extra_callbacks):
    recipe = make_recipe(rows=100, num_train_epochs=1, save_total_limit=None, eval_strategy="no")  # 5 steps/epoch
    run = tmp_path / "run"
    extra_callbacks(SubmitAtStep(run, 2, {"num_train_epochs": 3, "checkpoint_now": True}))
    assert main(["train", str(recipe)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["global_step"], metrics["epochs"]) == (15, 3.0)
    epochs, checkpoint = ControlChannel(run).entries()
    assert (epochs["step"], epochs["old"], epochs["new"]) == (2, 1.0, 3.0)
    assert (checkpoint["action"], checkpoint["new"], checkpoint["step"]) == ("checkpoint", "checkpoint-3", 3)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == [
        "checkpoint-10",
        "checkpoint-15",
        "checkpoint-3",
        "checkpoint-5",
    ]
    rates = learning_rates(run)  # the decay, planned over 5 steps, is stretched to end at step 15 instead
    assert rates[2] == pytest.approx(0.01 * 4 / 5) and rates[15] == pytest.approx(0.01 * (5 - (2 + 12 * 3 / 13)) / 5)
    assert all(later < earlier for earlier, later in itertools.pairwise(rates.values()))


def test_control_requests_are_validated():
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        ControlCommand.from_mapping({"learning_rate": -1}, "cli")
    with pytest.raises(ValueError, match="unknown field"):
        ControlCommand.from_mapping({"lr": 1}, "cli")
    with pytest.raises(ValueError, match="nothing to do"):
        ControlCommand.from_mapping({"stop_after_epoch": False}, "cli")
    with pytest.raises(ValueError, match="true or false"):
        ControlCommand.from_mapping({"checkpoint_now": "yes"}, "cli")
    assert ControlCommand.from_mapping({"num_train_epochs": 4, "checkpoint_now": True}, "cli").actions() == [
        "num_train_epochs",
        "checkpoint_now",
    ]


def test_control_refuses_a_run_that_is_not_running(tmp_path, capsys):
    running_status(tmp_path, state="finished")
    assert main(["control", str(tmp_path), "--lr", "1e-3"]) == 2
    assert "no training is running there (finished)" in capsys.readouterr().err


def test_stretched_schedule_is_continuous_and_ends_at_the_new_end():
    def linear(step: float) -> float:
        return max(0.0, (100 - step) / 100)

    longer = stretch_schedule(linear, 40, 100, 160)
    assert [longer(s) for s in (0, 40)] == [linear(0), linear(40)]
    assert longer(100) == pytest.approx(linear(40 + 60 * 60 / 120)) and longer(160) == pytest.approx(0.0)
    shorter = stretch_schedule(linear, 40, 100, 70)
    assert shorter(55) == pytest.approx(linear(70)) and shorter(70) == pytest.approx(0.0)


def running_status(run: Path, **fields) -> None:
    """A live status that says a training loop (this test's process) is running in ``run``."""
    run.mkdir(parents=True, exist_ok=True)
    status = {"run": run.name, "state": "running", "pid": os.getpid(), "global_step": 3, "max_steps": 10, **fields}
    (run / "live_status.json").write_text(json.dumps(status))


def test_live_learning_rate_is_bounded_by_the_recipes(tmp_path, capsys):
    run = tmp_path / "run"
    running_status(run, recipe_learning_rate=0.01)
    for bad, problem in (
        ("1e30", "too high: at most 100 × the recipe's 0.01, so 1"),
        ("nan", "positive number"),
        ("0", "positive number"),
    ):
        assert main(["control", str(run), "--lr", bad]) == 2, bad
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and problem in error, error
    assert not (run / "control" / "inbox").exists()  # nothing was queued
    assert main(["control", str(run), "--lr", "1", "--wait", "0"]) == 2  # 100 × is allowed; nobody answers here
    assert "did not answer" in capsys.readouterr().err and len(ControlChannel(run).receive()) == 1


def test_a_bad_queued_request_is_rejected_and_training_goes_on(make_recipe, tmp_path, extra_callbacks, caplog):
    recipe = make_recipe(rows=100, num_train_epochs=1, eval_strategy="no")  # 5 steps, learning rate 0.01

    class QueueBadRequests(TrainerCallback):
        """Requests that no front end lets through, queued behind their back."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                channel = ControlChannel(tmp_path / "run")
                channel.submit(ControlCommand(learning_rate=5.0, checkpoint_now=True, id="toolarge"))
                channel.inbox.joinpath("1-notjson.json").write_text("{not json")
                channel.inbox.joinpath("2-nonsense.json").write_text(json.dumps({"learning_rate": "fast"}))

    extra_callbacks(QueueBadRequests())
    assert main(["train", str(recipe)]) == 0
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 5
    assert all(rate <= 0.01 for rate in learning_rates(run).values())
    entries = ControlChannel(run).entries()
    assert {(entry["action"], entry["applied"], entry["request"]) for entry in entries} == {
        ("request", False, "notjson"),
        ("request", False, "nonsense"),
        ("learning_rate", False, "toolarge"),
        ("checkpoint_now", False, "toolarge"),
    }
    too_large = next(entry for entry in entries if entry["action"] == "learning_rate")
    assert "at most 100 × the recipe's 0.01" in too_large["reason"] and "live control" in caplog.text
    assert not any(run.glob("checkpoint-3"))


def test_a_torn_last_line_of_the_control_log_is_ignored_and_resume_goes_on(make_recipe, tmp_path, extra_callbacks):
    recipe = make_recipe(rows=100, num_train_epochs=2, eval_strategy="no")  # 5 steps per epoch
    run = tmp_path / "run"
    extra_callbacks(SubmitAtStep(run, 2, {"learning_rate": 0.005, "stop_after_epoch": True}))
    assert main(["train", str(recipe)]) == 0
    log = run / "control_log.jsonl"
    with log.open("ab") as handle:  # killed while appending
        handle.write(b'{"time": "2026-12-01T10:00:00", "step": 5, "action": "checkpo')
    assert [entry["action"] for entry in ControlChannel(run).entries()] == ["learning_rate", "stop_after_epoch"]

    assert main(["train", str(recipe), "--resume"]) == 0  # the recorded learning rate still applies
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 10
    assert learning_rates(run)[10] == pytest.approx(0.005 * 1 / 10)

    ControlChannel(run).record({"step": 10, "action": "checkpoint", "new": "checkpoint-10", "applied": True})
    lines = log.read_bytes().splitlines()  # the torn line was dropped, not built on
    assert [json.loads(line)["action"] for line in lines] == ["learning_rate", "stop_after_epoch", "checkpoint"]


def test_a_damaged_line_inside_the_control_log_is_one_clear_error(tmp_path, capsys, caplog):
    run = tmp_path / "run"
    running_status(run, state="finished")
    channel = ControlChannel(run)
    channel.record({"step": 1, "action": "learning_rate", "old": 0.01, "new": 0.002, "applied": True})
    whole = json.dumps({"step": 2, "action": "checkpoint", "new": "checkpoint-2", "applied": True}).encode()
    with channel.log_path.open("ab") as handle:  # a whole entry that lost only its line end: kept
        handle.write(whole)
    channel.record({"step": 3, "action": "stop_after_epoch", "new": 1.0, "applied": True})
    assert [entry["step"] for entry in channel.entries()] == [1, 2, 3]
    with channel.log_path.open("ab") as handle:
        handle.write('{"step": 4, "action": "→'.encode()[:-1])  # cut inside a UTF-8 character
    assert main(["control", str(run)]) == 0
    assert capsys.readouterr().out.count("\n") == 4 and "cut short" in caplog.text  # the status + 3 entries

    lines = channel.log_path.read_bytes().splitlines()
    channel.log_path.write_bytes(b"\n".join([lines[0], b"\x00\x00garbage", *lines[1:]]))
    with pytest.raises(HfnlpError, match=r"control_log\.jsonl, line 2: not a JSON object"):
        channel.entries()
    assert main(["control", str(run)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "control_log.jsonl, line 2" in error


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["control", "{tmp}/missing"], "no run folder at"),
        (["control", "{tmp}/missing", "--lr", "1e-3"], "no run folder at"),
        (["control", "{tmp}/a-file"], "is a file, not a run folder"),
        (["control", "{tmp}/empty"], "is not an hfnlp run folder"),
        (["control", "{tmp}/prepared"], "no live status"),
        (["control", "{tmp}/prepared", "--epochs", "3"], "no training is running there"),
    ],
)
def test_control_with_a_bad_run_folder_is_one_line_and_exit_2(tmp_path, capsys, argv, problem):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "recipe.yaml").write_text("task: text-classification\n")  # not started training yet
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hfnlp: error: ") and error.count("\n") == 1 and problem in error
