"""TextRNN for ONNX export: the packed recurrence computed on the padded batch, which ``torch.export`` traces.

TextRNN packs its padded batch (``pack_padded_sequence``), which ``torch.export`` cannot trace. For export only,
:class:`MaskedRecurrence` computes the same thing on the padded batch: each layer and direction runs as a
one-layer RNN with the trained weights, the reverse direction on each text reversed *within its length*, so
padding never enters a real position's state; outputs past a text's length are zeroed as ``pad_packed_sequence``
does, and the final states are gathered at each text's last real step. The model's own pooling and classifier
then run unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from hfnlp.models.onnx_export import TextClassifierLogits
from hfnlp.models.text_rnn.modeling_text_rnn import TextRNNForSequenceClassification


def reverse_within_length(sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[i]`` steps of ``sequences`` (batch, time, features); padding stays put."""
    positions = torch.arange(sequences.shape[1], device=sequences.device).unsqueeze(0)
    last = lengths.unsqueeze(1) - 1
    index = torch.where(positions <= last, last - positions, positions)
    return sequences.gather(1, index.unsqueeze(-1).expand_as(sequences))


class MaskedRecurrence(nn.Module):
    """The computation of a packed (bi)RNN/GRU/LSTM on a right-padded batch without packing (for export)."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.num_directions = 2 if rnn.bidirectional else 1
        extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if rnn.bias else [])
        self.layers = nn.ModuleList()
        for layer in range(rnn.num_layers):
            directions = nn.ModuleList()
            for direction in range(self.num_directions):
                single = type(rnn)(
                    rnn.input_size if layer == 0 else rnn.hidden_size * self.num_directions,
                    rnn.hidden_size,
                    num_layers=1,
                    bias=rnn.bias,
                    batch_first=True,
                    **extra,
                )
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                single.load_state_dict({f"{name}_l0": getattr(rnn, name + suffix).detach() for name in names})
                directions.append(single)
            self.layers.append(directions)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(outputs, h_n)`` as ``pad_packed_sequence(rnn(pack(inputs, lengths)))`` and the final hidden states
        give them: outputs (batch, time, directions × hidden), zero past each length; h_n (layers × directions,
        batch, hidden)."""
        last_step = (lengths - 1).view(-1, 1, 1)
        final_states = []
        hidden = inputs
        for directions in self.layers:
            outputs = []
            for direction, rnn in enumerate(directions):
                steps, _ = rnn(reverse_within_length(hidden, lengths) if direction else hidden)
                final_states.append(steps.gather(1, last_step.expand(-1, 1, steps.shape[-1])).squeeze(1))
                outputs.append(reverse_within_length(steps, lengths) if direction else steps)
            hidden = torch.cat(outputs, dim=-1)
        mask = torch.arange(inputs.shape[1], device=inputs.device).unsqueeze(0) < lengths.unsqueeze(1)
        return hidden * mask.unsqueeze(-1).to(hidden.dtype), torch.stack(final_states)


class ExportableTextRNN(TextClassifierLogits):
    """``(input_ids, attention_mask) -> logits`` of a TextRNN, with :class:`MaskedRecurrence` in place of packing."""

    def __init__(self, model: TextRNNForSequenceClassification) -> None:
        super().__init__(model)
        self.recurrence = MaskedRecurrence(model.rnn).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The logits the model computes, shape (batch, num_labels)."""
        model = self.model
        # As TextRNNForSequenceClassification.logits: an all-padding row still takes one step.
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        mask = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        outputs, final_state = self.recurrence(model.embedding(input_ids), lengths)
        return model.classifier(model.dropout(model.pool(outputs, final_state, mask, lengths)))
