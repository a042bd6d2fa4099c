"""Reports written at the end of a run: classification report, confusion matrix (CSV + PNG), curves."""

from __future__ import annotations

import contextlib
import csv
import functools
import importlib.resources
import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # runs are headless; never try to open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from transformers import EvalPrediction  # noqa: E402

from hfnlp.metrics import load_metric  # noqa: E402
from hfnlp.training.atomic import atomic_path, write_text  # noqa: E402
from hfnlp.training.run_folder import (  # noqa: E402
    CLASSIFICATION_REPORT,
    CLASSIFICATION_REPORT_TXT,
    CONFUSION_MATRIX_CSV,
    CONFUSION_MATRIX_PNG,
)

logger = logging.getLogger(__name__)
SUMMARY_METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1")
# Fonts with Chinese (and Japanese / Korean) glyphs, preferred first: matplotlib's DejaVu Sans has none, so labels
# such as 体育 would be drawn as empty boxes. Any other installed font whose name says CJK comes after these.
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "SimHei",
    "Heiti SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
PACKAGED_CJK_FONT = "NotoSansCJKsc-Regular.otf"  # in the mplfonts package (SIL Open Font License)
_CJK_FONT_NAME = re.compile(r"CJK|Source Han|WenQuanYi|YaHei|Hei\b|Droid Sans Fallback|AR PL")
_CJK_TEXT = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
CJK_FONT_HINT = (
    "no font with Chinese/Japanese/Korean glyphs is installed (nor the mplfonts package), so the plots show such "
    "labels as empty boxes; install one (Debian/Ubuntu: apt-get install fonts-noto-cjk; elsewhere Noto Sans CJK or "
    "WenQuanYi, or pip install mplfonts) and clear matplotlib's font cache (rm -r ~/.cache/matplotlib)"
)


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


@functools.cache
def cjk_font() -> str | None:
    """The name of an installed font with CJK glyphs (:data:`CJK_FONTS` first), else Noto Sans CJK SC as the
    ``mplfonts`` package ships it (a dependency: most machines, CI's included, have no CJK font), or ``None``."""
    installed = {font.name for font in font_manager.fontManager.ttflist}
    preferred = next((name for name in CJK_FONTS if name in installed), None)
    found = preferred or next((name for name in sorted(installed) if _CJK_FONT_NAME.search(name)), None)
    return found or _packaged_cjk_font()


def _packaged_cjk_font() -> str | None:
    try:
        path = importlib.resources.files("mplfonts") / "fonts" / PACKAGED_CJK_FONT
    except ModuleNotFoundError:
        return None
    if not path.is_file():
        return None
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


@functools.cache
def _warn_no_cjk_font() -> None:
    logger.warning(CJK_FONT_HINT)  # once per process (cached), instead of one matplotlib warning per glyph


@contextlib.contextmanager
def plot_fonts(texts: Iterable[str]) -> Iterator[None]:
    """Draw (and save) a figure inside this block so that ``texts`` — its labels — render: the default font, with an
    installed CJK font to fall back on for the glyphs it lacks. Without one, CJK ``texts`` get :data:`CJK_FONT_HINT`
    once instead of a warning per missing glyph."""
    font = cjk_font()
    if font is not None:
        # A list of families is matplotlib's per-glyph fallback (3.6+): Latin text keeps the default font.
        default = font_manager.FontProperties(family=plt.rcParams["font.family"]).get_name()
        with plt.rc_context({"font.family": [default, font]}):
            yield
        return
    if not any(_CJK_TEXT.search(text) for text in texts):
        yield
        return
    _warn_no_cjk_font()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        yield


def plot_confusion_matrix(matrix: np.ndarray, label_names: Sequence[str], path: str | Path) -> None:
    """Save a confusion-matrix heat map with counts in the cells (rows = true, columns = predicted)."""
    with plot_fonts(label_names):
        _plot_confusion_matrix(matrix, label_names, path)


def _plot_confusion_matrix(matrix: np.ndarray, label_names: Sequence[str], path: str | Path) -> None:
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
    save_figure(figure, path)


def plot_training_curves(log_history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Save train/eval loss and the learning rate against steps and every eval metric against epochs, from
    Trainer's log history (at the end of a run, and whenever a live view asks for it during one)."""
    evals = [entry for entry in log_history if "eval_loss" in entry]
    metric_names = sorted({key for entry in evals for key in entry if key.removeprefix("eval_") in SUMMARY_METRICS})
    with plot_fonts(metric_names):
        _plot_training_curves(log_history, evals, metric_names, path)


def _plot_training_curves(
    log_history: Sequence[dict[str, Any]], evals: list[dict[str, Any]], metric_names: list[str], path: str | Path
) -> None:
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    rates = [(entry["step"], entry["learning_rate"]) for entry in log_history if "learning_rate" in entry]
    figure, (loss_axes, metric_axes, rate_axes) = plt.subplots(1, 3, figsize=(16, 4))
    if train:
        loss_axes.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        loss_axes.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], marker="o", label="validation loss")
    loss_axes.set_xlabel("step")
    loss_axes.set_title("loss")
    if loss_axes.lines:
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
    save_figure(figure, path)


def save_figure(figure: plt.Figure, path: str | Path) -> None:
    """Save ``figure`` atomically (a live view may read the file at any moment) and free it."""
    figure.tight_layout()
    with atomic_path(path) as staged:
        figure.savefig(staged, dpi=120)
    plt.close(figure)
