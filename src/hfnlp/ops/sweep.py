"""Grid sweeps: every combination of ``--grid key=v1,v2`` values as an ordinary run under one sweep folder, then a
comparison table (markdown + CSV) and overlaid curves.

Each run is exactly ``hfnlp train RECIPE --set key=value ... --set output_dir=SWEEP/NAME``: in this process one
after the other by default (:func:`hfnlp.ops.session.train`; the libraries are loaded once), or as ``jobs``
parallel ``hfnlp train`` processes (each logging to ``NAME/train.log``). A run that already finished
(``metrics.json``) is kept, an interrupted one is resumed, so re-running a sweep completes it.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # runs are headless; never try to open a window
import matplotlib.pyplot as plt  # noqa: E402

from hfnlp.errors import HfnlpError  # noqa: E402
from hfnlp.ops.notify_settings import check_notify_settings  # noqa: E402
from hfnlp.ops.session import TrainOptions, train  # noqa: E402
from hfnlp.tasks import load_recipe  # noqa: E402
from hfnlp.training.reports import plot_fonts, save_figure  # noqa: E402
from hfnlp.training.run_folder import LIVE_STATUS, TRAIN_LOG, RunFolder  # noqa: E402

logger = logging.getLogger(__name__)
SKIPPED_METRICS = ("runtime", "per_second")
# The sweep folder's own files, next to the runs' folders.
COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
LOSS_CURVES = "loss_curves.png"


@dataclass
class SweepRun:
    """One combination of the grid and how its run went."""

    name: str
    values: dict[str, str]
    run_dir: Path
    status: str = "pending"  # pending | done | failed
    metrics: dict[str, Any] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> RunFolder:
        """The run's folder."""
        return RunFolder(self.run_dir)


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """``["a.b=1,2", "c=[1,2],[3]"]`` → ``{"a.b": ["1", "2"], "c": ["[1,2]", "[3]"]}`` (commas inside brackets stay)."""
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        values = _split_top_level(text)
        if not sep or not key.strip() or not values:
            raise HfnlpError(f"--grid {spec!r} must look like section.key=value1,value2")
        if key.strip() in grid:
            raise HfnlpError(f"--grid {key.strip()} is given twice")
        grid[key.strip()] = values
    if not grid:
        raise HfnlpError("give at least one --grid section.key=value1,value2")
    return grid


def _split_top_level(text: str) -> list[str]:
    values, depth, current = [], 0, ""
    for char in text:
        depth += (char in "[{(") - (char in "]})")
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    return [value.strip() for value in values if value.strip()]


def plan_sweep(
    recipe_path: str | Path, grid: dict[str, list[str]], overrides: list[str], sweep_dir: Path
) -> list[SweepRun]:
    """One :class:`SweepRun` per combination; every combination's recipe (its notification settings included) and
    the sweep folder are validated before anything runs."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise HfnlpError(f"the sweep folder {sweep_dir} is a file")
    shorts = [key.rsplit(".", 1)[-1] for key in grid]
    labels = shorts if len(set(shorts)) == len(shorts) else [key.replace(".", "-") for key in grid]
    runs = []
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination, strict=True))
        parts = zip(labels, combination, strict=True)
        name = "_".join(f"{label}-{re.sub(r'[^A-Za-z0-9.-]+', '', value)}" for label, value in parts)
        run = SweepRun(name, values, sweep_dir / name)
        check_notify_settings(load_recipe(recipe_path, train_overrides(run, overrides)).notify)
        runs.append(run)
    return runs


def train_overrides(run: SweepRun, overrides: list[str]) -> list[str]:
    """The ``--set`` values of one run: the sweep's own, the combination's, then the run folder."""
    return [*overrides, *(f"{key}={value}" for key, value in run.values.items()), f"output_dir={run.run_dir}"]


def train_argv(recipe_path: str | Path, run: SweepRun, overrides: list[str]) -> list[str]:
    """``hfnlp train`` arguments for ``run`` (resuming an interrupted run)."""
    argv = ["train", str(recipe_path)]
    for override in train_overrides(run, overrides):
        argv += ["--set", override]
    return argv + (["--resume"] if run.run_dir.exists() else [])


def run_sweep(recipe_path: str | Path, runs: list[SweepRun], overrides: list[str], jobs: int = 1) -> None:
    """Train every run not finished yet: in this process one by one, or ``jobs`` processes at a time."""
    todo = []
    for run in runs:
        if run.folder.metrics_path.is_file():
            logger.info("sweep: %s already finished, kept", run.name)
        else:
            todo.append(run)
    if jobs <= 1:
        for index, run in enumerate(todo, 1):
            logger.info("sweep: run %d/%d: %s", index, len(todo), run.name)
            try:
                recipe = load_recipe(recipe_path, train_overrides(run, overrides))
                train(recipe, TrainOptions(resume=run.run_dir.exists()))
            except Exception:  # a failed run is reported in the table; the sweep goes on
                logger.exception("sweep: %s failed", run.name)
                run.status = "failed"
            else:
                run.status = "done"
        return
    running: list[tuple[SweepRun, subprocess.Popen]] = []
    queue = list(todo)
    while queue or running:
        while queue and len(running) < jobs:
            run = queue.pop(0)
            argv = train_argv(recipe_path, run, overrides)
            run.run_dir.mkdir(parents=True, exist_ok=True)
            with run.folder.file(TRAIN_LOG).open("ab") as log:
                process = subprocess.Popen([sys.executable, "-m", "hfnlp", *argv], stdout=log, stderr=subprocess.STDOUT)
            running.append((run, process))
            logger.info("sweep: started %s (pid %d)", run.name, process.pid)
        time.sleep(1)
        for run, process in list(running):
            if process.poll() is not None:
                run.status = "done" if process.returncode == 0 else "failed"
                running.remove((run, process))
                logger.info("sweep: %s %s", run.name, run.status)


def collect(runs: list[SweepRun]) -> None:
    """Read each run's ``metrics.json`` and live status (its log history and best step)."""
    for run in runs:
        metrics_path, live_path = run.folder.metrics_path, run.folder.file(LIVE_STATUS)
        if metrics_path.is_file():
            run.metrics = json.loads(metrics_path.read_text())
        if run.status == "pending":  # finished by an earlier invocation, or never run
            run.status = "done" if run.metrics else "failed" if run.run_dir.exists() else "not run"
        if live_path.is_file():
            run.live = json.loads(live_path.read_text())


def comparison_rows(runs: list[SweepRun]) -> list[dict[str, Any]]:
    """One row per run: grid values, status, test metrics, best validation score and epoch, time, throughput."""
    test_keys = sorted(
        {key for run in runs for key in run.metrics.get("test", {}) if not key.endswith(SKIPPED_METRICS)}
    )
    rows = []
    for run in runs:
        history = run.live.get("log_history", [])
        best_step = run.live.get("best_global_step")
        best_epoch = next((e["epoch"] for e in history if "eval_loss" in e and e["step"] == best_step), None)
        test = run.metrics.get("test", {})
        row: dict[str, Any] = {"run": run.name, **run.values, "status": run.status}
        row.update({f"test {key}": test.get(key) for key in test_keys})
        row[f"best val {run.live.get('metric_for_best_model') or 'metric'}"] = run.metrics.get("best_validation_metric")
        row.update(
            {
                "best epoch": best_epoch,
                "epochs": run.metrics.get("epochs"),
                "wall time (s)": run.metrics.get("wall_time_s"),
                "train samples/s": run.metrics.get("train_samples_per_second"),
            }
        )
        rows.append(row)
    return rows


def write_comparison(rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    """Write :data:`COMPARISON_CSV` and :data:`COMPARISON_MD` in ``sweep_dir``; return the markdown table."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with (sweep_dir / COMPARISON_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    table = "\n".join(lines) + "\n"
    (sweep_dir / COMPARISON_MD).write_text(table, encoding="utf-8")
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def plot_sweep_curves(runs: list[SweepRun], path: Path) -> None:
    """Overlay every run's train and validation loss (and validation metric) against epochs, with one legend naming
    the runs, on whichever of the three plots shows the most of them."""
    metric = next((run.live.get("metric_for_best_model") for run in runs if run.live), None)
    with plot_fonts([run.name for run in runs]):
        _plot_sweep_curves(runs, metric, path)


def _plot_sweep_curves(runs: list[SweepRun], metric: str | None, path: Path) -> None:
    figure, (train_axes, eval_axes, metric_axes) = plt.subplots(1, 3, figsize=(17, 4.5))
    for index, run in enumerate(runs):
        style = {"color": f"C{index % 10}", "label": run.name, "marker": "o", "markersize": 3}
        history = run.live.get("log_history", [])
        train = [(e["epoch"], e["loss"]) for e in history if "loss" in e]
        evals = [e for e in history if "eval_loss" in e]
        if train:
            train_axes.plot(*zip(*train, strict=True), linewidth=1, **style)
        if evals:
            eval_axes.plot([e["epoch"] for e in evals], [e["eval_loss"] for e in evals], **style)
            if metric and f"eval_{metric}" in evals[0]:
                metric_axes.plot([e["epoch"] for e in evals], [e[f"eval_{metric}"] for e in evals], **style)
    for axes, title in (
        (train_axes, "train loss"),
        (eval_axes, "validation loss"),
        (metric_axes, f"validation {metric or 'metric'}"),
    ):
        axes.set_xlabel("epoch")
        axes.set_title(title)
    # A run keeps its colour in all three, so one legend names them: on the plot with the most runs, as train loss
    # may not have been logged at all (fewer steps than logging_steps).
    fullest = max((train_axes, eval_axes, metric_axes), key=lambda axes: len(axes.lines))
    if fullest.lines:
        fullest.legend(fontsize=7)
    save_figure(figure, path)
