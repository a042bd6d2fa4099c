"""TextRNN for sequence classification: embeddings, a (bi)RNN/GRU/LSTM encoder, pooling, linear head.

Self-contained on purpose: transformers copies this file, ``configuration_text_rnn.py`` and the shared
``*_text_classifier.py`` files next to the weights for ``trust_remote_code`` loading, where hfnlp is not installed,
so it imports only torch and transformers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .configuration_text_rnn import TextRNNConfig
from .modeling_text_classifier import TextClassifierPreTrainedModel

_RNN_CLASSES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class AdditiveAttentionPooling(nn.Module):
    """Additive attention over time: ``score_t = v . tanh(W h_t + b)``, softmax over real positions."""

    def __init__(self, input_size: int, attention_size: int) -> None:
        super().__init__()
        self.projection = nn.Linear(input_size, attention_size)
        self.context = nn.Linear(attention_size, 1, bias=False)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool ``hidden_states`` (batch, time, size) to (batch, size); positions where ``mask`` is False get
        zero weight."""
        scores = self.context(torch.tanh(self.projection(hidden_states))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.bmm(weights.unsqueeze(1), hidden_states).squeeze(1)


class TextRNNForSequenceClassification(TextClassifierPreTrainedModel):
    """TextRNN classifier. Expects right-padded ``input_ids``; padding never enters the recurrence or the
    pooling."""

    config_class = TextRNNConfig

    def __init__(self, config: TextRNNConfig) -> None:
        super().__init__(config)
        self.rnn = _RNN_CLASSES[config.cell](
            input_size=config.embedding_dim,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            batch_first=True,
            # torch warns about (and ignores) inter-layer dropout on a single layer
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.num_directions = 2 if config.bidirectional else 1
        output_size = config.hidden_size * self.num_directions
        attention = config.pooling == "attention"
        self.attention = AdditiveAttentionPooling(output_size, config.attention_size) if attention else None
        pooled_size = 2 * output_size if config.pooling == "first_last" else output_size
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(pooled_size, config.num_labels)
        self.post_init()

    def logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class scores (batch, num_labels); padding (``mask`` False) never enters the recurrence."""
        # A row of padding only still needs one step: pack_padded_sequence rejects zero lengths.
        lengths = mask.sum(dim=1).clamp(min=1)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        mask = positions.unsqueeze(0) < lengths.unsqueeze(1)

        embeddings = self.embedding(input_ids)
        if bool(mask.all()):
            # No padding (length-bucketed batches): the fused cuDNN / oneDNN kernels, which also run in bf16.
            outputs, final_state = self.rnn(embeddings)
        else:
            packed = pack_padded_sequence(embeddings, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_outputs, final_state = self.rnn(packed)
            outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=input_ids.shape[1])
        return self.classifier(self.dropout(self.pool(outputs, final_state, mask, lengths)))

    def pool(
        self,
        outputs: torch.Tensor,
        final_state: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """One vector per text, as ``config.pooling`` says, from the recurrence's ``outputs`` (batch, time, size),
        zero past each text's length, and its final state; ``mask`` and ``lengths`` tell the real steps."""
        pooling = self.config.pooling
        if pooling == "last":
            hidden = final_state[0] if isinstance(final_state, tuple) else final_state
            # h_n is (layers * directions, batch, hidden); the top layer's directions are its last entries.
            return hidden[-self.num_directions :].transpose(0, 1).reshape(outputs.shape[0], -1)
        if pooling == "first_last":
            last = outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths - 1]
            return torch.cat([outputs[:, 0], last], dim=-1)
        if pooling == "mean":
            # pad_packed_sequence fills padded positions with zeros, so a plain sum only counts real ones.
            return outputs.sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
        if pooling == "max":
            return outputs.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
        return self.attention(outputs, mask)


__all__ = ["TextRNNForSequenceClassification"]
