"""The ``text-classification`` pipeline with attributions (``explain=True``), built by
:func:`hfnlp.pipelines.text_classification.load_text_classifier`; a module of its own, so that the commands that need
only the model and tokenizer (``load_text_model``) never import transformers' pipelines."""

from __future__ import annotations

from typing import Any

from transformers import TextClassificationPipeline

from hfnlp.explain.attribution import explain_text


class ExplainingTextClassificationPipeline(TextClassificationPipeline):
    """transformers' ``text-classification`` pipeline that also takes ``explain=True``: every ``{"label", "score"}``
    it returns then carries ``"attributions"``, the spans of the text that raised or lowered that label's
    probability (:func:`hfnlp.explain.explain`)."""

    def __call__(self, inputs: str | list[str], explain: bool = False, **kwargs: Any) -> list[Any]:
        """Classify ``inputs`` as the parent class does; with ``explain``, attribute each returned label."""
        results = super().__call__(inputs, **kwargs)
        if not explain:
            return results
        single = isinstance(inputs, str)
        if not single and not (isinstance(inputs, list) and all(isinstance(text, str) for text in inputs)):
            raise ValueError("explain=True takes a text or a list of texts (no text pairs)")
        # A single text gives a list of its label(s); a list of texts gives one entry (a dict, or a list with
        # top_k) per text.
        for text, entry in zip([inputs] if single else inputs, [results] if single else results, strict=True):
            for row in entry if isinstance(entry, list) else [entry]:
                row["attributions"] = explain_text(self.model, self.tokenizer, text, row["label"]).spans
        return results


__all__ = ["ExplainingTextClassificationPipeline"]
