"""``hfnlp sweep``: every combination runs as an ordinary run; table and overlaid curves are written."""

from __future__ import annotations

import csv

import pytest

from hfnlp.cli import main
from hfnlp.errors import HfnlpError
from hfnlp.ops.sweep import parse_grid


def test_sweep_runs_every_combination_and_compares_them(make_recipe, tmp_path, capsys):
    recipe = make_recipe(rows=100, num_train_epochs=1, logging_steps=2)
    sweep = tmp_path / "sweep"
    argv = ["sweep", str(recipe), "--grid", "training.per_device_train_batch_size=16,32", "--output-dir", str(sweep)]
    assert main([*argv, "--grid", "tokenizer.max_length=8,[16]"]) == 2  # a bad value fails before anything runs
    assert not sweep.exists()
    assert main(argv) == 0
    rows = list(csv.DictReader((sweep / "comparison.csv").open()))
    assert [row["run"] for row in rows] == ["per_device_train_batch_size-16", "per_device_train_batch_size-32"]
    assert all(row["status"] == "done" and float(row["test accuracy"]) >= 0 for row in rows)
    assert [row["best epoch"] for row in rows] == ["1.0", "1.0"] and all(float(row["train samples/s"]) for row in rows)
    assert (sweep / "per_device_train_batch_size-32" / "model" / "config.json").is_file()
    table = (sweep / "comparison.md").read_text()
    assert (
        table.startswith("| run | training.per_device_train_batch_size | status | test accuracy")
        and table in capsys.readouterr().out
    )
    assert (sweep / "loss_curves.png").stat().st_size > 10_000

    finished = (sweep / "per_device_train_batch_size-16" / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0  # finished runs are kept, not trained again
    assert (sweep / "per_device_train_batch_size-16" / "metrics.json").stat().st_mtime_ns == finished


def test_grid_values_keep_commas_inside_brackets():
    assert parse_grid(["model.filter_sizes=[2,3],[4,5]", "training.learning_rate=1e-3, 3e-4"]) == {
        "model.filter_sizes": ["[2,3]", "[4,5]"],
        "training.learning_rate": ["1e-3", "3e-4"],
    }
    for bad in (["nokey"], ["a.b="], ["a=1", "a=2"]):
        with pytest.raises(HfnlpError):
            parse_grid(bad)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--grid", "training.learnig_rate=1e-3,1e-2"], "unknown key 'training.learnig_rate' (did you mean"),
        (["--grid", "training.learning_rate=1e-3", "--jobs", "0"], "--jobs must be 1 or more, got 0"),
        (["--grid", "training.learning_rate=1e-3", "--output-dir", "{tmp}/a-file"], "a-file is a file"),
        (["--grid", "training.learning_rate=1e-3", "--set", "notify.retries=-1"], "notify.retries must be 0 or more"),
        (["--grid", "training.learning_rate"], "must look like section.key=value1,value2"),
    ],
)
def test_a_bad_sweep_is_one_line_and_exit_2_before_any_run(make_recipe, tmp_path, capsys, extra, problem):
    recipe = make_recipe()
    (tmp_path / "a-file").write_text("x")
    assert main(["sweep", str(recipe), *(arg.format(tmp=tmp_path) for arg in extra)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hfnlp: error: ") and error.count("\n") == 1 and problem in error
    assert not (tmp_path / "run-sweep").exists() and not (tmp_path / "run").exists()


def test_sweep_curves_name_the_runs_when_no_train_loss_was_logged(tmp_path, monkeypatch):
    from hfnlp.ops import sweep

    history = [{"epoch": 1.0, "step": 4, "eval_loss": 0.6, "eval_accuracy": 0.7}]
    live = {"log_history": history, "metric_for_best_model": "accuracy"}
    runs = [sweep.SweepRun(name, {}, tmp_path / name, live=live) for name in ("lr-0.01", "lr-0.02")]
    figures = []
    monkeypatch.setattr(sweep, "save_figure", lambda figure, path: figures.append(figure))
    sweep.plot_sweep_curves(runs, tmp_path / "loss_curves.png")
    legends = [axes.get_legend() for axes in figures[0].axes if axes.get_legend() is not None]
    assert [[text.get_text() for text in legend.get_texts()] for legend in legends] == [["lr-0.01", "lr-0.02"]]
