"""The auto mode's candidates: how each one's training went, as ``candidates.json`` and the table record it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfnlp.ops.selection import is_number, validation_score
from hfnlp.recipe import Recipe
from hfnlp.training.atomic import write_text
from hfnlp.training.run_folder import RunFolder

CANDIDATES_JSON = "candidates.json"


@dataclass
class Candidate:
    """One candidate recipe and how its training went."""

    name: str
    recipe: Recipe  # with the overrides applied
    run_dir: Path  # the session's run folder (``--limit-train`` adds a suffix to the recipe's output_dir)
    yaml_text: str  # the commented recipe written to candidates/<name>.yaml
    status: str = "pending"  # trained | skipped | failed | refit (the chosen one retrained on train + validation)
    why: str | None = None
    validation_metric: str | None = None
    validation: float | None = None
    test_accuracy: float | None = None
    wall_time_s: float | None = None

    @property
    def finished(self) -> bool:
        """The run folder holds a complete run: its metrics and its final model."""
        return RunFolder(self.run_dir).finished

    def row(self) -> dict[str, Any]:
        """The candidate as ``candidates.json`` records it."""
        return {
            "name": self.name,
            "model_type": self.recipe.model.get("type"),
            "run_dir": str(self.run_dir),
            "status": self.status,
            "why": self.why,
            "validation_metric": self.validation_metric,
            "validation": self.validation,
            "test_accuracy": self.test_accuracy,
            "wall_time_s": self.wall_time_s,
        }


def record_trained(candidate: Candidate, summary: Mapping[str, Any], metric: str) -> None:
    """Mark ``candidate`` trained, with its validation score on ``metric``, test accuracy and wall time."""
    candidate.status = "trained"
    candidate.validation_metric, candidate.validation = validation_score(candidate.run_dir, metric)
    accuracy = summary.get("test", {}).get("accuracy")
    candidate.test_accuracy = float(accuracy) if is_number(accuracy) else None
    wall = summary.get("wall_time_s")
    candidate.wall_time_s = float(wall) if is_number(wall) else None


def write_candidates(output_dir: Path, candidates: Sequence[Candidate], winner: Candidate | None) -> None:
    """``candidates.json``: every candidate's row and the chosen one's name."""
    record = {"chosen": winner.name if winner else None, "candidates": [c.row() for c in candidates]}
    write_text(output_dir / CANDIDATES_JSON, json.dumps(record, indent=2, ensure_ascii=False))


def print_table(candidates: Sequence[Candidate], winner: Candidate | None) -> None:
    """The candidates as a small table on stdout; the chosen one marked ``*``."""
    metric = next((c.validation_metric for c in candidates if c.validation_metric), "metric")
    header = ["candidate", "model", "status", f"val {metric}", "test accuracy", "wall s", "why"]
    rows = [
        [
            c.name + (" *" if c is winner else ""),
            str(c.recipe.model.get("type")),
            c.status,
            _number(c.validation),
            _number(c.test_accuracy),
            f"{c.wall_time_s:.0f}" if c.wall_time_s is not None else "-",
            c.why or "",
        ]
        for c in candidates
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if winner is not None:
        print(f"chosen: {winner.name} (best validation {winner.validation_metric}: {_number(winner.validation)})")


def _number(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"
