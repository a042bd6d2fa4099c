"""What a recipe passes to TrainingArguments (``training.extra_args``, ``report_to``) and ``hfnlp train
--limit-eval``: mistakes are one line and exit 2 before the run folder exists; the rest changes the real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hfnlp.cli import main
from hfnlp.recipe import TrainingConfig
from hfnlp.tasks import load_recipe
from hfnlp.training.arguments import build_training_arguments
from tests.commands.conftest import assert_one_line_error
from tests.conftest import TINY_TEXT_CNN, make_sentiment_rows, write_csv

TINY = {**TINY_TEXT_CNN, "training": {**TINY_TEXT_CNN["training"], "report_to": "none", "mixed_precision": "no"}}


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    """A tiny text_cnn recipe on 200 generated reviews, writing to ``tmp_path/run``."""
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(200))
    path = tmp_path / "recipe.yaml"
    recipe = {**TINY, "output_dir": str(tmp_path / "run"), "data": {"train_file": str(data)}}
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("override", "parts"),
    [
        ("training.run_name=x", ["unknown key 'training.run_name'", "under training.extra_args (run_name: ...)"]),
        ("training.push_to_hub=true", ["unknown key 'training.push_to_hub'", "hub.push_to_hub"]),
        ("training.extra_args.push_to_hub=true", ["training.extra_args.push_to_hub: not allowed", "hub.push_to_hub"]),
        ("training.extra_args.hub_token=hf_x", ["training.extra_args.hub_token: not allowed", "never from a recipe"]),
        ("training.extra_args.output_dir=x", ["training.extra_args.output_dir: not allowed", "recipe's output_dir"]),
        ("training.extra_args.learning_rate=1", ["training.extra_args.learning_rate: set training.learning_rate"]),
        ("training.extra_args.save_step=3", ["not a TrainingArguments field", "'training.extra_args.save_steps'"]),
        ("training.extra_args.save_steps=abc", ["training.extra_args.save_steps: expected a number, got 'abc'"]),
        ("training.extra_args.lr_scheduler_kwargs=[1]", ["training.extra_args.lr_scheduler_kwargs: expected"]),
        ("training.extra_args=[run_name]", ["training.extra_args: expected a mapping"]),
        ("training.report_to=wandbx", ["training.report_to: 'wandbx' is not one", "(did you mean 'wandb'?)"]),
        # refused by TrainingArguments (or the schedule) itself, named, before the run folder exists
        ("training.extra_args.save_steps=3", ["training (with training.extra_args save_steps)", "round multiple"]),
        ("training.extra_args.lr_scheduler_kwargs={foo: 1}", ["lr_scheduler_kwargs: {'foo': 1}", "linear schedule"]),
        ("training.extra_args.optim_args=x", ["training.extra_args.optim_args: 'x'", "refuses it"]),
    ],
)
def test_a_training_arguments_mistake_is_one_line_before_the_run(override, parts, recipe_file, capsys):
    # the overrides after the recipe and before it: options and positionals in any order
    argv = ["train", "--set", "training.eval_steps=2", str(recipe_file), "--set", override]
    assert main(argv) == 2
    assert_one_line_error(capsys, *parts)
    assert not (recipe_file.parent / "run").exists()


def test_extra_args_and_report_to_reach_training_arguments(recipe_file):
    overrides = [
        "training.report_to=all",
        "training.extra_args={run_name: r1, save_steps: 2, lr_scheduler_kwargs: {}, adam_beta2: 0.98}",
    ]
    recipe = load_recipe(recipe_file, overrides)
    args = build_training_arguments(recipe, recipe.output_dir)
    assert (args.run_name, args.save_steps, args.adam_beta2) == ("r1", 2, 0.98)
    assert "none" not in args.report_to and isinstance(args.report_to, list)  # "all": every installed integration
    default = build_training_arguments(load_recipe(recipe_file), recipe.output_dir)
    assert (default.run_name, default.report_to) == ("run", [])  # the run folder's name; "none" → no integration


def test_report_to_takes_a_string_or_a_list():
    assert TrainingConfig(report_to="wandb").report_to == "wandb"
    assert TrainingConfig(report_to=["trackio", "tensorboard"]).report_to == ["trackio", "tensorboard"]


@pytest.mark.slow  # a fresh process trains (trackio reads TRACKIO_DIR once, at import)
def test_report_to_trackio_logs_locally_offline_and_writes_no_secret(recipe_file, tmp_path):
    trackio_dir = tmp_path / "trackio"
    secret = "hf_notarealtokenbutasecretone"
    env = {
        **os.environ,
        "TRACKIO_DIR": str(trackio_dir),
        "HF_HUB_OFFLINE": "1",
        "HF_TOKEN": secret,
        "OMP_NUM_THREADS": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    argv = [sys.executable, "-m", "hfnlp", "train", str(recipe_file), "--set", "training.report_to=[trackio]"]
    argv += ["--set", "training.extra_args={project: hfnlp-test}"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    written = [path for path in trackio_dir.rglob("*") if path.is_file()]
    assert any("hfnlp-test" in path.name for path in written), written  # the project's local database
    run_dir = recipe_file.parent / "run"
    for path in [*written, *(p for p in run_dir.rglob("*") if p.is_file())]:
        assert secret.encode() not in path.read_bytes(), path


@pytest.mark.slow  # a tiny training (about 5 s on one thread)
def test_limit_eval_cuts_validation_and_test_and_says_so(recipe_file, capsys):
    assert main(["train", str(recipe_file), "--limit-eval", "7"]) == 0
    out = capsys.readouterr().out
    run_dir = recipe_file.parent / "run-limit-eval7"  # a debug run keeps out of the real run's folder
    summary = json.loads((run_dir / "metrics.json").read_text())
    limited = summary["limit_eval"]
    assert {name: kept["rows"] for name, kept in limited.items()} == {"validation": 7, "test": 7}
    assert all(kept["of"] > 7 for kept in limited.values())
    assert f"test (--limit-eval: on 7 of {limited['test']['of']} test rows):" in out
    assert summary["test"]["samples_per_second"] and not (recipe_file.parent / "run").exists()


def test_limit_eval_must_be_at_least_one(recipe_file, capsys):
    assert main(["train", str(recipe_file), "--limit-eval", "0"]) == 2
    assert_one_line_error(capsys, "--limit-eval must be at least 1, got 0")
