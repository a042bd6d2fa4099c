"""Per-token attributions of a text classifier's prediction, as spans of the original text.

Self-contained on purpose: ``hfnlp demo --space`` copies this file into a Hugging Face Space, where hfnlp is not
installed, so it imports only torch and transformers' tokenizer outputs. :mod:`hfnlp.explain` is its public face.

Two methods, chosen per model family (``config.model_type``):

- **Integrated gradients** on the token embeddings, from a zero baseline (Sundararajan et al. 2017), for the
  sequence models (TextCNN, TextRNN in every cell and pooling): their every input passes through the one token
  embedding, so the attributions account for the whole prediction (they sum to f(text) - f(zero embeddings), the
  completeness that makes them comparable across tokens), and a token's effect through its context (a convolution
  window, the recurrence) is kept, which removing it would blur by shifting its neighbours together.
- **Occlusion** for the rest (fastText with every pooling, n-grams and subwords, ensembles, any model with remote
  code of another family): the drop of the predicted class's probability when the token is removed. A bag model's
  n-gram and character n-gram tables and its TF-IDF weights lie off the token-embedding path that gradients would
  follow, and a removal changes exactly the features that token takes part in; one batched forward pass per text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

# Families whose whole input is the token embedding and whose output is smooth enough along the straight path
# from zero embeddings for integrated gradients.
GRADIENT_FAMILIES = ("hfnlp_text_cnn", "hfnlp_text_rnn")
# Points of the integrals' midpoint rule, tried in turn until the attributions are complete; a batch of points at a
# time.
INTEGRATION_STEPS = (64, 256, 1024)
GRADIENT_BATCH = 64
COMPLETENESS_TOLERANCE = 0.01
OCCLUSION_BATCH = 64


class UnknownLabel(ValueError):
    """A target that is not one of the model's labels."""


@dataclass
class Explanation:
    """Why a classifier gave ``text`` its label: ``label`` (the explained class) with its probability ``score``, and
    ``spans``: ``{"text", "start", "end", "score"}`` per token, ``start``/``end`` character offsets into the original
    text, ``score`` how much the token raised (positive) or lowered (negative) the label's probability."""

    label: str
    score: float
    spans: list[dict[str, Any]] = field(default_factory=list)
    method: str = "occlusion"

    def to_dict(self) -> dict[str, Any]:
        """The explanation as plain JSON-ready values."""
        return asdict(self)


def explain_text(model: Any, tokenizer: Any, text: str, target: str | int | None = None) -> Explanation:
    """Attribute the probability ``model`` gives class ``target`` (a label name or index; default: the predicted
    class) for ``text`` to the tokens ``tokenizer`` cuts it into (truncated as for prediction).

    Raises:
        UnknownLabel: ``target`` is not one of the model's labels.
    """
    encoding = tokenizer(text, truncation=True, return_offsets_mapping=True)
    ids = torch.tensor([encoding["input_ids"]], device=model.device)
    # Tokens with a real extent in the text; special tokens (empty offsets) are never removed or attributed.
    positions = [i for i, (start, end) in enumerate(encoding["offset_mapping"]) if end > start]
    with torch.no_grad():
        probabilities = torch.softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
    label_id = _label_id(model.config, target, int(probabilities.argmax()))
    if model.config.model_type in GRADIENT_FAMILIES:
        method, scores = "integrated_gradients", _integrated_gradients(model, ids, positions, label_id)
    else:
        method = "occlusion"
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        scores = _occlusion(model, ids, pad, positions, label_id, float(probabilities[label_id]))
    spans = []
    for position, score in zip(positions, scores, strict=True):
        start, end = encoding["offset_mapping"][position]
        spans.append({"text": text[start:end], "start": start, "end": end, "score": score})
    return Explanation(model.config.id2label[label_id], float(probabilities[label_id]), spans, method)


def _label_id(config: Any, target: str | int | None, predicted: int) -> int:
    if target is None:
        return predicted
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < config.num_labels:
        return target
    names = {str(name): int(i) for i, name in config.id2label.items()}
    if str(target) in names:
        return names[str(target)]
    raise UnknownLabel(f"unknown target label {target!r}; the model's labels are {', '.join(names)}")


def _occlusion(
    model: Any, ids: torch.Tensor, pad: int, positions: list[int], label_id: int, full: float
) -> list[float]:
    """``full`` minus the label's probability without each token (the rest right-padded with ``pad``), all removals
    of a batch in one forward pass."""
    scores: list[float] = []
    row = ids[0]
    for start in range(0, len(positions), OCCLUSION_BATCH):
        chunk = positions[start : start + OCCLUSION_BATCH]
        # Removing (not masking) the token: the model sees the text as if the token had never been written, so
        # n-grams across the gap form as they would then.
        batch = torch.full((len(chunk), max(len(row) - 1, 1)), pad, dtype=row.dtype, device=row.device)
        mask = torch.zeros_like(batch, dtype=torch.long)
        for i, position in enumerate(chunk):
            kept = torch.cat([row[:position], row[position + 1 :]])
            batch[i, : len(kept)] = kept
            mask[i, : len(kept)] = 1
        with torch.no_grad():
            probabilities = torch.softmax(model(input_ids=batch, attention_mask=mask).logits.float(), dim=-1)
        scores.extend(full - p for p in probabilities[:, label_id].tolist())
    return scores


def _integrated_gradients(model: Any, ids: torch.Tensor, positions: list[int], label_id: int) -> list[float]:
    """Integrated gradients of the label's probability along the straight path from all-zero token embeddings to
    the text's, summed over each token's dimensions.

    The midpoint rule with :data:`INTEGRATION_STEPS` points, refined until the attributions add up to the change of
    probability along the path (within :data:`COMPLETENESS_TOLERANCE`): a confident model's probability can rise
    from 0 to 1 over a small stretch of the path, which 64 points miss (seen on a BiLSTM: 0.83 for 1.00).
    """
    embedding = model.get_input_embeddings()
    with torch.no_grad():
        embedded = embedding(ids).float()  # (1, time, dim)
        baseline = _probabilities(model, ids, embedding, torch.zeros_like(embedded))[0, label_id]
        change = float(_probabilities(model, ids, embedding, embedded)[0, label_id] - baseline)
    for steps in INTEGRATION_STEPS:
        gradients = torch.zeros_like(embedded[0])
        for start in range(0, steps, GRADIENT_BATCH):
            alphas = (torch.arange(start, min(start + GRADIENT_BATCH, steps), device=ids.device) + 0.5) / steps
            path = (alphas[:, None, None] * embedded).requires_grad_(True)
            # cuDNN computes an RNN's backward pass in training mode only; the native kernels work in eval mode.
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                probability = _probabilities(model, ids, embedding, path)[:, label_id].sum()
                (gradient,) = torch.autograd.grad(probability, path)
            gradients += gradient.float().sum(dim=0)
        attributions = (embedded[0] * gradients / steps).sum(dim=-1)
        if abs(float(attributions.sum()) - change) <= COMPLETENESS_TOLERANCE:
            break
    return [float(attributions[position]) for position in positions]


def _probabilities(model: Any, ids: torch.Tensor, embedding: torch.nn.Module, embedded: torch.Tensor) -> torch.Tensor:
    """Class probabilities of the text ``ids`` (one row) with its token embeddings replaced by each row of
    ``embedded`` (points, time, dim)."""
    # The model looks its embeddings up itself: the hook hands it the given ones instead.
    handle = embedding.register_forward_hook(lambda module, inputs, output: embedded.to(output.dtype))
    try:
        logits = model(input_ids=ids.expand(embedded.shape[0], -1)).logits
    finally:
        handle.remove()
    return torch.softmax(logits.float(), dim=-1)


__all__ = ["GRADIENT_FAMILIES", "Explanation", "UnknownLabel", "explain_text"]
