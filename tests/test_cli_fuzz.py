"""The CLI's contract under generated input: every command ends with exit code 0 (done) or 2 (a user's mistake, one
line on stderr, no traceback), never an uncaught exception or exit 1 (a bug). Generated here: ``--set`` overrides
of a tiny text recipe (valid values, near misses and nonsense), whole recipe files, data files, and the options of
the other commands. Each successful training is a few steps of a tiny model, so the budget stays small."""

from __future__ import annotations

import contextlib
import io
import json
import os
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfnlp.cli import main
from tests.conftest import TINY_TEXT_CNN, make_sentiment_rows, one_torch_thread, write_csv

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BASE = {**TINY_TEXT_CNN, "data": {"label_names": ["negative", "positive"]}}
# Recipe keys a user sets, with the values they might give: right ones, near misses and nonsense.
KEYS = [
    "training.learning_rate",
    "training.num_train_epochs",
    "training.max_steps",
    "training.per_device_train_batch_size",
    "training.per_device_eval_batch_size",
    "training.gradient_accumulation_steps",
    "training.lr_scheduler_type",
    "training.optim",
    "training.eval_strategy",
    "training.eval_steps",
    "training.metric_for_best_model",
    "training.early_stopping_patience",
    "training.mixed_precision",
    "training.label_smoothing_factor",
    "training.warmup_steps",
    "training.save_total_limit",
    "training.group_by_length",
    "training.num_threads",
    "seed",
    "tokenizer.level",
    "tokenizer.max_length",
    "tokenizer.vocab_size",
    "tokenizer.min_frequency",
    "model.type",
    "model.embedding_dim",
    "model.num_filters",
    "model.filter_sizes",
    "model.dropout",
    "model.initializer",
    "data.text_column",
    "data.label_column",
    "data.validation_ratio",
    "data.test_ratio",
    "data.bad_rows",
    "data.label_names",
    "data.format",
    "task",
    "training",
    "nonsense.key",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "3",
            "1e-3",
            "0.5",
            "1.5",
            "2**40",
            "4294967296",
            ".inf",
            "-.inf",
            ".nan",
            "1e30",
            "true",
            "false",
            "no",
            "null",
            "[]",
            "[2, 3]",
            "[0]",
            "{}",
            "'x'",
            "epoch",
            "steps",
            "cosine",
            "linear",
            "cosin",
            "adamw_torch",
            "adamw",
            "sgd",
            "accuracy",
            "acuracy",
            "macro_f1",
            "loss",
            "char",
            "word",
            "bpe",
            "jieba",
            "text_rnn",
            "fasttext",
            "captioner",
            "image_classifier",
            "xavier",
            "skip",
            "error",
            "csv",
            "[a, b, c]",
            "[negative]",
            "[negative, positive, neutral]",
            "text",
            "label",
            "review",
            "bf16",
            "fp16",
            "auto",
            "[1, 2",
            "{a: [",
            "&a [*a]",
            "!!python/object:os.system",
            "",
        ]
    ),
    st.text(alphabet=string.printable + "中文é\u2028", max_size=12),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("fuzz-data") / "reviews.csv", make_sentiment_rows(80))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``hfnlp ARGV`` in this process: (exit code, stderr). An uncaught exception fails the test."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, stderr.getvalue()


@contextlib.contextmanager
def working_directory(folder: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def assert_contract(code: int, stderr: str, argv: list[str]) -> None:
    assert code in (0, 2), f"hfnlp {' '.join(argv)} → exit {code}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, f"hfnlp {' '.join(argv)} printed a traceback:\n{stderr[-3000:]}"
    if code == 2:
        errors = [line for line in stderr.splitlines() if line.startswith(("hfnlp: error", "usage:", "hfnlp train:"))]
        assert errors, f"hfnlp {' '.join(argv)} → exit 2 without an error line:\n{stderr[-2000:]}"


def write_recipe(folder: Path, data_file: Path, recipe: dict | None = None) -> Path:
    recipe = json.loads(json.dumps(recipe or BASE))
    recipe.setdefault("data", {}).setdefault("train_file", str(data_file))
    recipe["output_dir"] = str(folder / "run")
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


@FUZZ
@given(overrides=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3))
def test_generated_overrides_end_in_done_or_one_clear_error(overrides, data_file):
    with tempfile.TemporaryDirectory() as folder:
        argv = ["train", str(write_recipe(Path(folder), data_file))]
        for key, value in overrides:
            argv += ["--set", f"{key}={value}"]
        code, stderr = run_cli(argv)
        assert_contract(code, stderr, argv)


@FUZZ
@given(
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400),
)
def test_generated_recipe_files_end_in_done_or_one_clear_error(text, data_file):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.yaml"
        path.write_text(text, encoding="utf-8")
        argv = ["train", str(path)]
        code, stderr = run_cli(argv)
        assert_contract(code, stderr, argv)


CELLS = st.one_of(
    st.sampled_from(["positive", "negative", "neutral", "0", "1", "1000000", "", " ", "good food", "中文 好吃"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
)


@FUZZ
@given(
    header=st.sampled_from(["text,label", "label,text", "sentence,label", "text", "text,label,extra", ""]),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=40),
    repeat=st.integers(min_value=0, max_value=3),
)
def test_generated_data_files_end_in_done_or_one_clear_error(header, rows, repeat, data_file):
    import csv

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            if header:
                handle.write(header + "\n")
            csv.writer(handle).writerows(rows * (repeat + 1))
        recipe = json.loads(json.dumps(BASE))
        recipe["data"] = {"train_file": str(path)}
        argv = ["train", str(write_recipe(Path(folder), path, recipe))]
        code, stderr = run_cli(argv)
        assert_contract(code, stderr, argv)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, data_file: Path) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-run")
    code, stderr = run_cli(["train", str(write_recipe(folder, data_file))])
    assert code == 0, stderr
    return folder / "run"


# `dashboard` serves until stopped: its options are tested in tests/ops.
COMMANDS = ["predict", "evaluate", "export", "control", "push", "caption", "sweep", "augment-preview"]
OPTION_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "3", "1e30", ".nan", "", "x", "/", "/nonexistent/file.txt", "a\u2028b", "中文"]),
    st.text(alphabet=string.printable, max_size=10),
)


@FUZZ
@given(
    command=st.sampled_from(
        ["predict", "evaluate", "export", "control", "push", "caption", "sweep", "augment-preview"]
    ),
    target=st.sampled_from(["run", "model", "missing", "file", "data"]),
    options=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "--input",
                    "--output",
                    "--text-column",
                    "--batch-size",
                    "--checkpoint",
                    "--output-dir",
                    "--data",
                    "--lr",
                    "--epochs",
                    "--repo-id",
                    "--num-beams",
                    "--grid",
                    "--jobs",
                    "--n",
                    "--set",
                ]
            ),
            OPTION_VALUES,
        ),
        max_size=3,
    ),
)
def test_other_commands_under_generated_options_end_in_done_or_one_clear_error(
    command, target, options, trained_run, data_file, tmp_path
):
    paths = {
        "run": trained_run,
        "model": trained_run / "model",
        "missing": tmp_path / "missing",
        "file": data_file,
        "data": data_file.parent,
    }
    argv = [command, str(paths[target])]
    for option, value in options:
        argv += [option, value]
    with tempfile.TemporaryDirectory() as folder, working_directory(Path(folder)):  # relative outputs land there
        code, stderr = run_cli(argv)
    assert_contract(code, stderr, argv)
