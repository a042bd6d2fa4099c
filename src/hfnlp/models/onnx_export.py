"""ONNX export of hfnlp's text classifiers, with a parity check against PyTorch.

The graph takes ``input_ids`` and ``attention_mask`` (int64, shape (batch, sequence), both axes dynamic) and
returns ``logits``. It is exported with ``torch.export`` (the dynamo exporter) at opset 18: the lowest opset for
which that exporter has native implementations (a lower one would go through lossy version conversion), and
well above opset 11, from which Range, dynamic Pad, GatherElements and friends take run-time shapes, so one
graph serves every batch size and text length.

What is traced comes from the model's family (``ModelFamily.exportable``): :class:`TextClassifierLogits` where the
model's own forward traces (TextCNN, fastText with hashed n-grams), an export-only equivalent where it does not
(TextRNN's packed recurrence), or a refusal that says why (fastText's learnt n-gram lookup).
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
from transformers import AutoConfig, PreTrainedModel

from hfnlp.errors import HfnlpError
from hfnlp.models.registry import ModelFamily

OPSET = 18
MAX_ABS_DIFF = 1e-4
ONNX_PATH = Path("onnx") / "model.onnx"


@dataclass(frozen=True)
class OnnxExport:
    """Where the graph was written and its largest logit difference to PyTorch on the check batch."""

    path: Path
    max_abs_diff: float


class TextClassifierLogits(nn.Module):
    """``(input_ids, attention_mask) -> logits`` of a text classifier whose own forward ``torch.export`` traces."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The model's logits, shape (batch, num_labels)."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def load_text_classifier_model(model_dir: str | Path) -> PreTrainedModel:
    """The text classifier saved in ``model_dir``, with hfnlp's classes, in eval mode on the CPU.

    Raises:
        HfnlpError: The folder holds no model of a family that ONNX export covers.
    """
    family = _exportable_family(AutoConfig.from_pretrained(model_dir).model_type)
    return family.model_class.from_pretrained(model_dir).eval()


def _exportable_family(model_type: str) -> ModelFamily:
    # Imported here: the families import this module for TextClassifierLogits.
    from hfnlp.models import FAMILIES, family_for

    family = family_for(model_type)
    if family is None or family.onnx_module is None:
        exportable = [name for name, family in FAMILIES.items() if family.onnx_module]
        raise HfnlpError(f"ONNX export covers {', '.join(exportable)} models, not {model_type!r}")
    return family


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
    try:
        exportable = _exportable_family(model.config.model_type).exportable(model).eval()
    except HfnlpError as error:
        raise HfnlpError(f"{model_dir}: {error}") from error
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
