"""TextCNN (Kim 2014) for sequence classification: embeddings, 1-D convolutions, max-over-time, linear head.

Self-contained on purpose: transformers copies this file and ``configuration_text_cnn.py`` next to the weights
for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_text_cnn import TextCNNConfig


class TextCNNPreTrainedModel(PreTrainedModel):
    """Weight initialization and loading glue shared by TextCNN models."""

    config_class = TextCNNConfig
    base_model_prefix = "text_cnn"
    main_input_name = "input_ids"
    # forward() takes **kwargs only to ignore extra tokenizer outputs; without this the Trainer would pass
    # num_items_in_batch and skip dividing the (mean) loss by the gradient accumulation steps.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own defaults, so that initializer="default" means exactly that; transformers guards the
        # torch.nn.init calls behind reset_parameters() so weights loaded by from_pretrained are left alone.
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


class TextCNNForSequenceClassification(TextCNNPreTrainedModel):
    """TextCNN classifier. Expects right-padded ``input_ids``; the logits do not depend on how much padding
    follows the text."""

    def __init__(self, config: TextCNNConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embedding = nn.Embedding(
            num_embeddings=config.vocab_size,
            embedding_dim=config.embedding_dim,
            padding_idx=config.pad_token_id,
        )
        self.convs = nn.ModuleList(
            [nn.Conv1d(config.embedding_dim, config.num_filters, kernel_size=k) for k in config.filter_sizes],
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.num_filters * len(config.filter_sizes), config.num_labels)
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
        """Classify a batch of right-padded token sequences.

        Args:
            input_ids: Token ids, shape (batch, time).
            attention_mask: 1 for real tokens, 0 for padding; derived from ``pad_token_id`` when omitted.
            labels: Class indices, shape (batch,); when given, the cross-entropy loss is returned too.
            **kwargs: Ignored (e.g. ``token_type_ids`` from a BERT-style tokenizer).

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` (batch, num_labels), and ``loss`` when ``labels``
            is given.
        """
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        lengths = attention_mask.sum(dim=1)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        mask = positions.unsqueeze(0) < lengths.unsqueeze(1)

        # Zeroing padded positions (whatever their id or embedding row) makes them look like the zero padding
        # a shorter batch gets below, which is what makes the logits independent of the batch's padding.
        embeddings = self.embedding(input_ids) * mask.unsqueeze(-1).to(self.embedding.weight.dtype)
        widest = max(self.config.filter_sizes)
        hidden = nn.functional.pad(embeddings.transpose(1, 2), (0, max(0, widest - input_ids.shape[1])))

        pooled = []
        for conv, size in zip(self.convs, self.config.filter_sizes, strict=True):
            features = torch.relu(conv(hidden))
            # A window starting at t is kept if it lies within the text, or is the first window of a text
            # shorter than the filter (then it sees the text plus zeros, the same in any batch).
            starts = torch.arange(features.shape[-1], device=features.device)
            valid = starts.unsqueeze(0) + size <= lengths.clamp(min=size).unsqueeze(1)
            pooled.append(features.masked_fill(~valid.unsqueeze(1), float("-inf")).max(dim=-1).values)

        logits = self.classifier(self.dropout(torch.cat(pooled, dim=-1)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["TextCNNForSequenceClassification", "TextCNNPreTrainedModel"]
