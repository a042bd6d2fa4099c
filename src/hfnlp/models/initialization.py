"""Weight initialization schemes for freshly built models (the configs' ``initializer`` option).

The models themselves start from PyTorch's default initialization; the trainer applies the configured scheme
to a new model (never to one loaded with ``from_pretrained``) before copying in any pretrained word vectors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedModel

INITIALIZERS = ("xavier", "kaiming", "normal", "default")

_WEIGHT_INITS: dict[str, Callable[[torch.Tensor], object]] = {
    "xavier": nn.init.xavier_uniform_,
    "kaiming": lambda weight: nn.init.kaiming_normal_(weight, nonlinearity="relu"),
    "normal": lambda weight: nn.init.normal_(weight, mean=0.0, std=0.02),
}


@torch.no_grad()
def initialize_weights(model: nn.Module, scheme: str, include_embeddings: bool = False) -> None:
    """Re-initialize ``model``'s weights in place with ``scheme``.

    Every parameter with two or more dimensions (linear, convolution and recurrent weight matrices) gets
    ``"xavier"`` (Glorot uniform), ``"kaiming"`` (He normal, ReLU gain) or ``"normal"`` (mean 0, std 0.02);
    every bias becomes zero. Other one-dimensional parameters (e.g. norm scales) are left as they are.
    ``"default"`` changes nothing, keeping PyTorch's defaults.

    Args:
        model: The model to initialize.
        scheme: One of ``"xavier"``, ``"kaiming"``, ``"normal"``, ``"default"``.
        include_embeddings: Also re-initialize ``nn.Embedding`` / ``nn.EmbeddingBag`` matrices; their
            padding row, if any, is set back to zero.

    Raises:
        ValueError: ``scheme`` is not one of the above.
    """
    if scheme not in INITIALIZERS:
        choices = ", ".join(map(repr, INITIALIZERS))
        raise ValueError(f"initializer={scheme!r} is not valid; choose one of {choices}")
    if scheme == "default":
        return
    init_weight = _WEIGHT_INITS[scheme]
    for module in model.modules():
        is_embedding = isinstance(module, nn.Embedding | nn.EmbeddingBag)
        if is_embedding and not include_embeddings:
            continue
        for name, parameter in module.named_parameters(recurse=False):
            if parameter.dim() >= 2:
                init_weight(parameter)
            elif name.startswith("bias"):
                nn.init.zeros_(parameter)
        if is_embedding and module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()


def initialize_from_config(model: PreTrainedModel) -> None:
    """Apply ``model.config.initializer`` (and ``initialize_embeddings``) to a freshly built model."""
    initialize_weights(model, model.config.initializer, include_embeddings=model.config.initialize_embeddings)


__all__ = ["INITIALIZERS", "initialize_from_config", "initialize_weights"]
