"""Classification metrics: accuracy, macro/weighted F1, per-class report, confusion matrix, via sklearn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import evaluate
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

_DESCRIPTION = """
Single-label classification metrics computed with scikit-learn (zero_division=0): accuracy, macro
precision / recall / F1 over all the given labels (a label never predicted counts with F1 0), and
support-weighted F1. With detailed=True also a per-class report and the confusion matrix.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted label ids.
    references (`list` of `int`): true label ids.
    labels (`list` of `int`, *optional*): the label ids to report on, in order; defaults to
        `range(len(label_names))` when `label_names` is given, else to the ids seen in the inputs.
        Every prediction and reference must be one of them.
    label_names (`list` of `str`, *optional*): a name for each of `labels`; defaults to the ids as strings.
    detailed (`bool`, defaults to `False`): also return `report` and `confusion_matrix`.
Returns:
    accuracy, macro_f1, macro_precision, macro_recall, weighted_f1 (`float`), and when `detailed`:
    report (`dict`): {label_name: {"precision", "recall", "f1", "support"}} in label order;
    confusion_matrix (`list` of `list` of `int`): rows are true labels, columns predicted labels,
        both in label order, every label present.
Examples:
    >>> metric = hfnlp.metrics.load_metric("classification")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 2], labels=[0, 1, 2])["accuracy"]
    0.6666666666666666
"""

_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    """Accuracy, macro/weighted F1, per-class report and confusion matrix for single-label classification."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES,
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(
        self,
        predictions: Sequence[int],
        references: Sequence[int],
        labels: Sequence[int] | None = None,
        label_names: Sequence[str] | None = None,
        detailed: bool = False,
    ) -> dict[str, Any]:
        if not references:
            raise ValueError("no predictions to score: predictions and references are empty")
        seen = {*references, *predictions}
        if labels is None:
            labels = range(len(label_names)) if label_names is not None else sorted(seen)
        labels = list(labels)
        names = [str(label) for label in labels] if label_names is None else list(label_names)
        if len(names) != len(labels):
            raise ValueError(f"got {len(names)} label_names for {len(labels)} labels")
        unknown = sorted(seen - set(labels))
        if unknown:
            raise ValueError(f"label ids {unknown} are in the predictions or references but not in {labels=}")

        def scores(average: str | None) -> tuple[Any, Any, Any, Any]:
            return precision_recall_fscore_support(
                references, predictions, labels=labels, average=average, zero_division=0
            )

        precision, recall, f1, _ = scores("macro")
        result: dict[str, Any] = {
            "accuracy": float(accuracy_score(references, predictions)),
            "macro_f1": float(f1),
            "macro_precision": float(precision),
            "macro_recall": float(recall),
            "weighted_f1": float(scores("weighted")[2]),
        }
        if detailed:
            per_class = zip(names, *scores(None), strict=True)
            result["report"] = {
                name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                for name, p, r, f, s in per_class
            }
            result["confusion_matrix"] = confusion_matrix(references, predictions, labels=labels).tolist()
        return result
