"""A fast tokenizer whose pre-tokenizer segments Chinese text into words with jieba.

``tokenizers`` cannot serialize a Python pre-tokenizer, so (as transformers' RoFormer tokenizer does)
the saved ``tokenizer.json`` holds a whitespace placeholder and jieba is attached again on load. This
file is copied next to a saved tokenizer, so it imports only jieba, tokenizers and transformers: the
folder loads with ``AutoTokenizer.from_pretrained(folder, trust_remote_code=True)`` without hfnlp.
"""

from __future__ import annotations

from typing import Any

import jieba
from tokenizers import NormalizedString, PreTokenizedString, pre_tokenizers
from transformers import PreTrainedTokenizerFast


class JiebaPreTokenizer:
    """Splits each piece of text into jieba words, dropping whitespace-only pieces."""

    def jieba_split(self, index: int, text: NormalizedString) -> list[NormalizedString]:
        return [text[start:end] for word, start, end in jieba.tokenize(str(text)) if word.strip()]

    def pre_tokenize(self, pretokenized: PreTokenizedString) -> None:
        pretokenized.split(self.jieba_split)


def jieba_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """The jieba pre-tokenizer as a ``tokenizers`` object (not serializable: attach it after loading)."""
    return pre_tokenizers.PreTokenizer.custom(JiebaPreTokenizer())


class JiebaTokenizerFast(PreTrainedTokenizerFast):
    """``PreTrainedTokenizerFast`` with jieba word segmentation before the vocabulary lookup."""

    # No __init__ override: transformers 5 would then rebuild the backend from the bare vocabulary and lose the
    # normalizer. Loading attaches jieba here; a freshly trained tokenizer gets it from its trainer.
    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> JiebaTokenizerFast:
        tokenizer = super().from_pretrained(*args, **kwargs)
        tokenizer.backend_tokenizer.pre_tokenizer = jieba_pre_tokenizer()
        return tokenizer

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        self.backend_tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        try:
            return super().save_pretrained(*args, **kwargs)
        finally:
            self.backend_tokenizer.pre_tokenizer = jieba_pre_tokenizer()


JiebaTokenizerFast.register_for_auto_class("AutoTokenizer")
