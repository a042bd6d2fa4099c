"""TextCNN (Kim 2014) for sequence classification: embeddings, 1-D convolutions, max-over-time, linear head.

Self-contained on purpose: transformers copies this file, ``configuration_text_cnn.py`` and the shared
``*_text_classifier.py`` files next to the weights for ``trust_remote_code`` loading, where hfnlp is not installed,
so it imports only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_text_cnn import TextCNNConfig
from .modeling_text_classifier import TextClassifierPreTrainedModel


class TextCNNForSequenceClassification(TextClassifierPreTrainedModel):
    """TextCNN classifier. Expects right-padded ``input_ids``; the logits do not depend on how much padding
    follows the text."""

    config_class = TextCNNConfig

    def __init__(self, config: TextCNNConfig) -> None:
        super().__init__(config)
        self.convs = nn.ModuleList(
            [nn.Conv1d(config.embedding_dim, config.num_filters, kernel_size=k) for k in config.filter_sizes],
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.num_filters * len(config.filter_sizes), config.num_labels)
        self.post_init()

    def logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class scores (batch, num_labels); the same for a text whatever padding (``mask`` False) follows it."""
        lengths = mask.sum(dim=1)
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

        return self.classifier(self.dropout(torch.cat(pooled, dim=-1)))


__all__ = ["TextCNNForSequenceClassification"]
