"""ONNX export of hfnlp's text classifiers (TextRNN, TextCNN, fastText), with a parity check against PyTorch.

The graph takes ``input_ids`` and ``attention_mask`` (int64, shape (batch, sequence), both axes dynamic) and
returns ``logits``. It is exported with ``torch.export`` (the dynamo exporter) at opset 18: the lowest opset for
which that exporter has native implementations (a lower one would go through lossy version conversion), and
well above opset 11, from which Range, dynamic Pad, GatherElements and friends take run-time shapes, so one
graph serves every batch size and text length.

TextRNN packs its padded batch (``pack_padded_sequence``), which ``torch.export`` cannot trace. For export only,
:class:`MaskedRecurrence` computes the same thing on the padded batch: each layer and direction runs as a
one-layer RNN with the trained weights, the reverse direction on each text reversed *within its length*, so
padding never enters a real position's state; outputs past a text's length are zeroed as ``pad_packed_sequence``
does, and the final states are gathered at each text's last real step. The model's own pooling and classifier
then run unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel

import hfnlp.models  # noqa: F401  (registers hfnlp's families, so the folder loads with hfnlp's own classes)
from hfnlp.errors import HfnlpError
from hfnlp.models.text_rnn import TextRNNForSequenceClassification

OPSET = 18
MAX_ABS_DIFF = 1e-4
ONNX_PATH = Path("onnx") / "model.onnx"
TEXT_MODEL_TYPES = ("hfnlp_text_rnn", "hfnlp_text_cnn", "hfnlp_fasttext")


@dataclass(frozen=True)
class OnnxExport:
    """Where the graph was written and its largest logit difference to PyTorch on the check batch."""

    path: Path
    max_abs_diff: float


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


class ExportableTextClassifier(nn.Module):
    """``(input_ids, attention_mask) -> logits`` of an hfnlp text classifier, in a form ``torch.export`` traces."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model.eval()
        is_rnn = isinstance(model, TextRNNForSequenceClassification)
        self.recurrence = MaskedRecurrence(model.rnn).eval() if is_rnn else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.recurrence is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        model = self.model
        # As TextRNNForSequenceClassification.forward: an all-padding row still takes one step.
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        mask = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        outputs, final_state = self.recurrence(model.embedding(input_ids), lengths)
        return model.classifier(model.dropout(model._pool(outputs, final_state, mask, lengths)))


def load_text_classifier_model(model_dir: str | Path) -> PreTrainedModel:
    """The text classifier saved in ``model_dir``, with hfnlp's classes, in eval mode on the CPU."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    if model.config.model_type not in TEXT_MODEL_TYPES:
        raise HfnlpError(
            f"ONNX export covers the text classifiers ({', '.join(TEXT_MODEL_TYPES)}), not {model.config.model_type!r}"
        )
    return model.eval()


def check_batch(vocab_size: int, pad_token_id: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded batch of random token ids with lengths 1..24 (one row of padding only, one full row)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([1, 2, 5, 11, 17, 24, 0, 24])
    ids = torch.randint(0, vocab_size, (len(lengths), int(lengths.max())), generator=generator)
    ids[ids == pad_token_id] = (pad_token_id + 1) % vocab_size
    mask = torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return ids.masked_fill(~mask, pad_token_id), mask.long()


def export_onnx(model_dir: str | Path, output: str | Path | None = None, opset: int = OPSET) -> OnnxExport:
    """Export the text classifier in ``model_dir`` to ONNX (default ``<model_dir>/onnx/model.onnx``) and check
    that onnxruntime's logits match PyTorch's within :data:`MAX_ABS_DIFF` on a padded batch; raise if not."""
    model_dir = Path(model_dir)
    output = Path(output) if output is not None else model_dir / ONNX_PATH
    model = load_text_classifier_model(model_dir)
    if getattr(model.config, "exact_ngrams", False) or getattr(model.config, "pooling", "mean") == "tfidf":
        # torch.searchsorted and torch.unique, which find and count a text's n-grams, have no ONNX operator.
        raise HfnlpError(
            f"{model_dir}: fastText with exact_ngrams or pooling: tfidf cannot be exported to ONNX (n-gram lookup "
            "and counting have no ONNX operators); the PyTorch model folder is complete and loads anywhere"
        )
    exportable = ExportableTextClassifier(model).eval()
    input_ids, attention_mask = check_batch(model.config.vocab_size, model.config.pad_token_id)
    output.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 1: "sequence"}
    with torch.no_grad(), _quiet("onnx_ir", "onnxscript"):
        torch.onnx.export(
            exportable,
            (input_ids, attention_mask),
            str(output),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes={"input_ids": dynamic, "attention_mask": dynamic},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    difference = max_abs_diff(model, output, input_ids, attention_mask)
    if difference > MAX_ABS_DIFF:
        raise HfnlpError(f"{output}: ONNX logits differ from PyTorch by {difference:.2e} (> {MAX_ABS_DIFF:.0e})")
    return OnnxExport(output, difference)


@contextlib.contextmanager
def _quiet(*logger_names: str) -> Iterator[None]:
    # The exporter's graph passes log one INFO line per rewritten initializer: hundreds of lines under `hfnlp -v`
    # or any INFO logging set-up; keep them to warnings while exporting.
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def max_abs_diff(
    model: PreTrainedModel, onnx_path: str | Path, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> float:
    """Largest absolute difference between the PyTorch model's logits and the ONNX graph's on one batch."""
    import onnxruntime

    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits.numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {
        "input_ids": input_ids.numpy().astype(np.int64),
        "attention_mask": attention_mask.numpy().astype(np.int64),
    }
    (logits,) = session.run(None, inputs)
    return float(np.abs(logits - expected).max())
