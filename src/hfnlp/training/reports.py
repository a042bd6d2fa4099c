"""Reports written at the end of a run: classification report, confusion matrix (CSV + PNG), curves."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # runs are headless; never try to open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from transformers import EvalPrediction  # noqa: E402

from hfnlp.metrics import load_metric  # noqa: E402
from hfnlp.training.atomic import atomic_path, write_text  # noqa: E402
from hfnlp.training.run_folder import (  # noqa: E402
    CLASSIFICATION_REPORT,
    CLASSIFICATION_REPORT_TXT,
    CONFUSION_MATRIX_CSV,
    CONFUSION_MATRIX_PNG,
)

SUMMARY_METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1")


def classification_metrics(num_labels: int) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` for Trainer: accuracy and macro/weighted scores from the offline metric."""
    metric = load_metric("classification")

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        scores = metric.compute(
            predictions=np.argmax(logits, axis=-1), references=prediction.label_ids, labels=list(range(num_labels))
        )
        return {key: float(scores[key]) for key in SUMMARY_METRICS}

    return compute


def classification_scores(
    predictions: Sequence[int], references: Sequence[int], label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro/weighted scores, the per-class report and the confusion matrix."""
    return load_metric("classification").compute(
        predictions=list(predictions),
        references=list(references),
        labels=list(range(len(label_names))),
        label_names=list(label_names),
        detailed=True,
    )


def write_classification_report(folder: str | Path, scores: dict[str, Any], label_names: Sequence[str]) -> None:
    """Write ``classification_report.{json,txt}`` and ``confusion_matrix.{csv,png}`` from ``scores`` (each file
    atomically)."""
    folder = Path(folder)
    write_text(folder / CLASSIFICATION_REPORT, json.dumps(scores, indent=2, ensure_ascii=False))
    write_text(folder / CLASSIFICATION_REPORT_TXT, format_report(scores, label_names))
    matrix = np.asarray(scores["confusion_matrix"])
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["true \\ predicted", *label_names])
    for name, row in zip(label_names, matrix, strict=True):
        writer.writerow([name, *row.tolist()])
    write_text(folder / CONFUSION_MATRIX_CSV, table.getvalue())
    plot_confusion_matrix(matrix, label_names, folder / CONFUSION_MATRIX_PNG)


def format_report(scores: dict[str, Any], label_names: Sequence[str]) -> str:
    """A plain-text per-class precision / recall / F1 table, like scikit-learn's."""
    width = max(12, *(len(name) for name in label_names))
    lines = [f"{'':>{width}}  precision  recall  f1-score  support"]
    for name in label_names:
        row = scores["report"][name]
        lines.append(
            f"{name:>{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:8.4f}  {row['support']:7d}"
        )
    lines.append("")
    lines.append(f"{'accuracy':>{width}}  {scores['accuracy']:.4f}")
    lines.append(f"{'macro F1':>{width}}  {scores['macro_f1']:.4f}")
    return "\n".join(lines) + "\n"


def plot_confusion_matrix(matrix: np.ndarray, label_names: Sequence[str], path: str | Path) -> None:
    """Save a confusion-matrix heat map with counts in the cells (rows = true, columns = predicted)."""
    size = max(4.0, 0.6 * len(label_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    axes.set_yticks(range(len(label_names)), label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    _save_figure(figure, path)


def plot_training_curves(log_history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Save train/eval loss and the learning rate against steps and every eval metric against epochs, from
    Trainer's log history (at the end of a run, and whenever a live view asks for it during one)."""
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    evals = [entry for entry in log_history if "eval_loss" in entry]
    metric_names = sorted({key for entry in evals for key in entry if key.removeprefix("eval_") in SUMMARY_METRICS})
    rates = [(entry["step"], entry["learning_rate"]) for entry in log_history if "learning_rate" in entry]
    figure, (loss_axes, metric_axes, rate_axes) = plt.subplots(1, 3, figsize=(16, 4))
    if train:
        loss_axes.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        loss_axes.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], marker="o", label="validation loss")
    loss_axes.set_xlabel("step")
    loss_axes.set_title("loss")
    loss_axes.legend()
    for name in metric_names:
        metric_axes.plot(
            [e["epoch"] for e in evals], [e[name] for e in evals], marker="o", label=name.removeprefix("eval_")
        )
    metric_axes.set_xlabel("epoch")
    metric_axes.set_title("validation metrics")
    if metric_names:
        metric_axes.legend()
    if rates:
        rate_axes.plot(*zip(*rates, strict=True))
    rate_axes.set_xlabel("step")
    rate_axes.set_title("learning rate")
    _save_figure(figure, path)


def _save_figure(figure: plt.Figure, path: str | Path) -> None:
    """Save ``figure`` atomically (a live view may read the file at any moment) and free it."""
    figure.tight_layout()
    with atomic_path(path) as staged:
        figure.savefig(staged, dpi=120)
    plt.close(figure)
