"""Batched text-classification inference over a saved model folder, through ``transformers.pipeline``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import Pipeline, pipeline

import hfnlp.models  # noqa: F401  (registers hfnlp's families with the Auto classes)
from hfnlp.errors import HfnlpError
from hfnlp.tokenization.text import cut_to_token_budget, load_saved_tokenizer


def load_text_classifier(model: str | Path, trust_remote_code: bool = False) -> Pipeline:
    """A ``text-classification`` pipeline for a saved hfnlp model folder (or a Hub id when online)."""
    path = Path(model)
    if not path.exists() and path.is_absolute():
        raise HfnlpError(f"model folder not found: {path}")
    if path.is_dir() and not (path / "config.json").exists():
        candidate = path / "model"
        if not (candidate / "config.json").exists():
            raise HfnlpError(f"{path} is neither a saved model (no config.json) nor a run folder (no model/)")
        path = candidate
    return pipeline(
        "text-classification",
        model=str(path),
        tokenizer=None if trust_remote_code else load_saved_tokenizer(path),
        trust_remote_code=trust_remote_code,
        device=0 if torch.cuda.is_available() else -1,
    )


def classify(classifier: Pipeline, texts: Sequence[str], batch_size: int = 64) -> list[dict[str, Any]]:
    """``[{"label", "score"}, ...]`` for ``texts`` (top label, softmax score), in input order."""
    empty = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if empty:
        raise HfnlpError(f"input row(s) {', '.join(str(i + 1) for i in empty[:10])}: empty text")
    texts = cut_to_token_budget(texts, classifier.tokenizer.model_max_length)
    outputs = classifier(texts, batch_size=batch_size, truncation=True, top_k=1)
    return [output[0] if isinstance(output, list) else output for output in outputs]
