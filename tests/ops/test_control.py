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
    assert main(["control", str(tmp_path), "--lr", "1e-3"]) == 2
    assert "no training is running there" in capsys.readouterr().err


def test_stretched_schedule_is_continuous_and_ends_at_the_new_end():
    def linear(step: float) -> float:
        return max(0.0, (100 - step) / 100)

    longer = stretch_schedule(linear, 40, 100, 160)
    assert [longer(s) for s in (0, 40)] == [linear(0), linear(40)]
    assert longer(100) == pytest.approx(linear(40 + 60 * 60 / 120)) and longer(160) == pytest.approx(0.0)
    shorter = stretch_schedule(linear, 40, 100, 70)
    assert shorter(55) == pytest.approx(linear(70)) and shorter(70) == pytest.approx(0.0)
