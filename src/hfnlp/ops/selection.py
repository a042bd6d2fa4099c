"""Choosing among finished runs by their validation scores alone: test scores stay an unbiased estimate of the
chosen model (``hfnlp train --data``'s candidates, and the members of an ensemble)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hfnlp.training.run_folder import CHECKPOINT_STATE, METRICS, RECIPE, RunFolder


def validation_score(run_dir: str | Path, metric: str | None = None) -> tuple[str, float | None]:
    """The best validation value of ``metric`` in a finished run folder (default: the run's own
    ``training.metric_for_best_model``), as ``(metric name, value)``; the value is ``None`` when none was measured.

    ``metrics.json``'s ``best_validation_metric`` holds the best value of the run's own metric; another metric is
    read from the evaluations logged in the newest checkpoint's ``trainer_state.json``. Test scores are never read.
    """
    run_dir = Path(run_dir)
    own = recipe_metric(run_dir)
    metric = (metric or own).removeprefix("eval_")
    if metric == own:
        best = read_json(run_dir / METRICS).get("best_validation_metric")
        if is_number(best):
            return metric, float(best)
    values = [entry[f"eval_{metric}"] for entry in log_history(run_dir) if is_number(entry.get(f"eval_{metric}"))]
    if not values:
        return metric, None
    return metric, float(min(values) if metric.endswith("loss") else max(values))


def best_epoch(run_dir: str | Path) -> float | None:
    """The epoch of the run's best validation score on its own metric (the checkpoint Trainer kept as best: the
    first of equal scores); ``None`` when the run logged no evaluation of that metric."""
    key = f"eval_{recipe_metric(Path(run_dir)).removeprefix('eval_')}"
    scored = [e for e in log_history(Path(run_dir)) if is_number(e.get(key)) and is_number(e.get("epoch"))]
    if not scored:
        return None
    lower = key.endswith("loss")
    best = scored[0]
    for entry in scored[1:]:
        if entry[key] < best[key] if lower else entry[key] > best[key]:
            best = entry
    return float(best["epoch"])


def choose_candidate(run_dirs: Mapping[str, str | Path], metric: str | None = None) -> tuple[str, str, float] | None:
    """The finished run with the best validation score, as ``(name, metric, value)``; ``None`` when no run has one.

    Every run is scored on ``metric`` (default: the first run's ``metric_for_best_model``; lower is better for a
    loss); a tie goes to the earlier run (the candidates come most promising first). Only validation scores are
    read: test scores stay an unbiased estimate of the chosen model.
    """
    if not run_dirs:
        return None
    metric = (metric or recipe_metric(Path(next(iter(run_dirs.values()))))).removeprefix("eval_")
    best: tuple[str, str, float] | None = None
    for name, run_dir in run_dirs.items():
        _, value = validation_score(run_dir, metric)
        if value is None:
            continue
        if best is None or (value < best[2] if metric.endswith("loss") else value > best[2]):
            best = (name, metric, value)
    return best


def recipe_metric(run_dir: Path) -> str:
    """The run's ``training.metric_for_best_model`` as its ``recipe.yaml`` holds it (accuracy when left out)."""
    path = run_dir / RECIPE
    saved = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    training = (saved or {}).get("training") or {}
    return str(training.get("metric_for_best_model") or "accuracy")


def log_history(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluations logged up to the newest checkpoint that holds its trainer state."""
    for step in reversed(RunFolder(run_dir).checkpoint_steps()):
        state = read_json(run_dir / f"checkpoint-{step}" / CHECKPOINT_STATE)
        if state:
            return [entry for entry in state.get("log_history", []) if isinstance(entry, dict)]
    return []


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; empty when the file is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
