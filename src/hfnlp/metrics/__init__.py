"""Offline ``evaluate`` metrics shipped with hfnlp.

Each metric is an :class:`evaluate.Metric` subclass in its own module folder next to this file
(``classification/classification.py``, ``bleu/bleu.py``, ``cider/cider.py``, ``rouge_l/rouge_l.py``).
:func:`load_metric` hands that local folder to ``evaluate.load``, which copies the script into its
dynamic-modules cache and imports it from there: no Hub look-up, so it works with ``HF_HUB_OFFLINE=1``
and without any network. The caption metrics are thin subclasses of
:class:`hfnlp.metrics.caption_metric.CaptionMetric` over the pure-Python scorers in
:mod:`hfnlp.metrics.coco`, which reproduce ``pycocoevalcap`` without Java. METEOR is not shipped: COCO's
METEOR 1.5 is a Java program with its own paraphrase tables, and NLTK's re-implementation gives other
values and needs a WordNet download.

Example::

    metric = load_metric("bleu")
    metric.compute(predictions=["a dog runs ."], references=[["A dog is running.", "a dog runs"]])
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import evaluate

METRIC_NAMES = ("classification", "bleu", "cider", "rouge_l")
_MODULES_DIR = Path(__file__).resolve().parent


def metric_path(name: str) -> Path:
    """The module folder of metric ``name`` (what ``evaluate.load`` is given).

    Raises ValueError for an unknown name, listing the valid ones and the closest match.
    """
    if name not in METRIC_NAMES:
        match = difflib.get_close_matches(name, METRIC_NAMES, n=1, cutoff=0.5)
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        raise ValueError(f"unknown metric {name!r}{hint}; valid names: {', '.join(METRIC_NAMES)}")
    return _MODULES_DIR / name


def load_metric(name: str, **load_kwargs: Any) -> evaluate.EvaluationModule:
    """Load the shipped metric ``name`` (one of :data:`METRIC_NAMES`) as an ``evaluate`` module, offline.

    ``load_kwargs`` go to ``evaluate.load`` (e.g. ``keep_in_memory=True``, ``experiment_id``,
    ``num_process`` / ``process_id`` for distributed evaluation).
    """
    path = metric_path(name)  # before importing evaluate (slow), so a bad name fails fast
    import evaluate

    return evaluate.load(str(path), **load_kwargs)
