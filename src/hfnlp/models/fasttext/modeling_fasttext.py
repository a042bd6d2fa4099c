"""FastText-style classifier: mean of token and hashed n-gram embeddings, optional hidden layer, linear head.

Self-contained on purpose: transformers copies this file and ``configuration_fasttext.py`` next to the weights
for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_fasttext import FastTextConfig

# The n-gram hash works on 31-bit states so that a state times the (31-bit, odd) multiplier fits in int64.
_HASH_MASK = (1 << 31) - 1
_HASH_MULTIPLIER = 0x5BD1E995  # MurmurHash2's multiplier


def _mix(state: torch.Tensor) -> torch.Tensor:
    # Multiply-xorshift: a bijection on 31-bit values that spreads every input bit over the low bits, so
    # that "% buckets" below does not map n-grams of nearby token ids to nearby (colliding) buckets.
    state = (state * _HASH_MULTIPLIER) & _HASH_MASK
    return state ^ (state >> 13)


def hash_ngrams(input_ids: torch.Tensor, n: int, buckets: int) -> torch.Tensor:
    """Bucket ids in ``[0, buckets)`` of the n-grams of consecutive tokens: shape (batch, time - n + 1).

    Deterministic integer arithmetic only, so ids are the same on every device, run and platform.
    """
    windows = input_ids.long().unfold(1, n, 1)
    # Seeding with n keeps a bigram and a trigram from sharing a hash by construction.
    state = torch.full_like(windows[..., 0], n)
    for position in range(n):
        state = _mix(state ^ (windows[..., position] & _HASH_MASK))
    return _mix(state) % buckets


class FastTextPreTrainedModel(PreTrainedModel):
    """Weight initialization and loading glue shared by FastText models."""

    config_class = FastTextConfig
    base_model_prefix = "fasttext"
    main_input_name = "input_ids"
    # forward() takes **kwargs only to ignore extra tokenizer outputs; without this the Trainer would pass
    # num_items_in_batch and skip dividing the (mean) loss by the gradient accumulation steps.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own defaults, so that initializer="default" means exactly that; transformers guards the
        # torch.nn.init calls behind reset_parameters() so weights loaded by from_pretrained are left alone.
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


class FastTextForSequenceClassification(FastTextPreTrainedModel):
    """FastText-style classifier; padding (``attention_mask == 0``) never enters the average."""

    def __init__(self, config: FastTextConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embedding = nn.Embedding(
            num_embeddings=config.vocab_size,
            embedding_dim=config.embedding_dim,
            padding_idx=config.pad_token_id,
        )
        dim = config.embedding_dim
        self.ngram_embedding = nn.Embedding(config.ngram_buckets, dim) if config.ngram_sizes else None
        self.dropout = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(dim, config.hidden_size) if config.hidden_size else None
        self.classifier = nn.Linear(config.hidden_size or dim, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding matrix (where pretrained word vectors go)."""
        return self.embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the token embedding module; ``config.freeze_embeddings`` applies to the new one too."""
        self.embedding = value
        self.embedding.weight.requires_grad_(not self.config.freeze_embeddings)

    def tie_weights(self, *args, **kwargs) -> None:
        """Nothing to tie; re-applies ``config.freeze_embeddings``.

        ``from_pretrained`` replaces every parameter with a new, trainable one and then calls this method,
        which ``post_init`` calls as well, so this is the one place that keeps frozen embeddings frozen.
        """
        super().tie_weights(*args, **kwargs)
        self.embedding.weight.requires_grad_(not self.config.freeze_embeddings)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Classify a batch of token sequences.

        Args:
            input_ids: Token ids, shape (batch, time).
            attention_mask: 1 for real tokens, 0 for padding; derived from ``pad_token_id`` when omitted.
                An n-gram counts only if all its tokens are real.
            labels: Class indices, shape (batch,); when given, the cross-entropy loss is returned too.
            **kwargs: Ignored (e.g. ``token_type_ids`` from a BERT-style tokenizer).

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` (batch, num_labels), and ``loss`` when ``labels``
            is given.
        """
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        mask = attention_mask.bool()
        dtype = self.embedding.weight.dtype

        token_weights = mask.unsqueeze(-1).to(dtype)
        total = (self.embedding(input_ids) * token_weights).sum(dim=1)
        count = token_weights.sum(dim=1)
        for n in self.config.ngram_sizes:
            if input_ids.shape[1] < n:
                continue
            ngram_ids = hash_ngrams(input_ids, n, self.config.ngram_buckets)
            ngram_weights = mask.unfold(1, n, 1).all(dim=-1).unsqueeze(-1).to(dtype)
            total = total + (self.ngram_embedding(ngram_ids) * ngram_weights).sum(dim=1)
            count = count + ngram_weights.sum(dim=1)
        # An all-padding row averages nothing; clamping gives it a zero vector instead of 0/0.
        features = self.dropout(total / count.clamp(min=1))

        if self.hidden is not None:
            features = torch.relu(self.hidden(features))
        logits = self.classifier(features)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["FastTextForSequenceClassification", "FastTextPreTrainedModel", "hash_ngrams"]
