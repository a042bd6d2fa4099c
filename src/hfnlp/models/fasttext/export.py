"""fastText for ONNX export: its own forward traces, except where the n-grams were learnt from the training split."""

from __future__ import annotations

from hfnlp.errors import HfnlpError
from hfnlp.models.fasttext.modeling_fasttext import FastTextForSequenceClassification
from hfnlp.models.onnx_export import TextClassifierLogits


def exportable_fasttext(model: FastTextForSequenceClassification) -> TextClassifierLogits:
    """``model`` for ``torch.onnx.export``; :class:`HfnlpError` with ``exact_ngrams`` or a TF-IDF pooling."""
    if model.config.exact_ngrams or model.config.pooling != "mean":
        # torch.searchsorted and torch.unique, which find and count a text's n-grams, have no ONNX operator.
        raise HfnlpError(
            "fastText with exact_ngrams or pooling: tfidf cannot be exported to ONNX (n-gram lookup and counting "
            "have no ONNX operators); the PyTorch model folder is complete and loads anywhere"
        )
    return TextClassifierLogits(model)
