"""Why a text classifier labelled a text: per-token attributions as spans of the original text
(:mod:`hfnlp.explain.attribution` says which method each model family gets, and why)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hfnlp.errors import HfnlpError
from hfnlp.explain.attribution import Explanation, UnknownLabel, explain_text

if TYPE_CHECKING:
    from transformers import Pipeline


def explain(classifier: Pipeline, text: str, target: str | int | None = None) -> Explanation:
    """Explain the prediction of the ``text-classification`` pipeline ``classifier`` (from
    :func:`hfnlp.pipelines.text_classification.load_text_classifier`) for ``text``: the label (``target``, a label
    name or index, or by default the predicted one), its probability, and each token's attribution.

    Raises:
        HfnlpError: ``target`` is not one of the model's labels, or ``text`` is empty.
    """
    if not text.strip():
        raise HfnlpError("nothing to explain: the text is empty")
    try:
        return explain_text(classifier.model, classifier.tokenizer, text, target)
    except UnknownLabel as error:
        raise HfnlpError(str(error)) from None


__all__ = ["Explanation", "explain"]
