"""An embedding table stored as int8 rows with one float scale each: a quarter of the float32 table's size.

Self-contained on purpose: transformers copies this file next to the weights (``modeling_fasttext.py`` imports it)
for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only torch.
"""

from __future__ import annotations

import torch
from torch import nn

INT8_MAX = 127


class QuantizedEmbedding(nn.Module):
    """What the model asks of an ``nn.Embedding`` (called with ids, gives float rows), from an int8 table.

    Row ``i`` is ``weight[i] * scale[i]``: symmetric per-row quantization, ``scale`` the row's largest magnitude / 127,
    so a value is off by at most half a step, ``scale / 2``, about 0.4% of the row's largest value. Only the rows a
    batch uses are turned into floats, never the whole table. Both tensors are buffers: the table is for inference,
    it has no gradient (a model trains with float32 tables and is quantized afterwards, :meth:`from_embedding`).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.register_buffer("weight", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("scale", torch.zeros(num_embeddings))

    @classmethod
    @torch.no_grad()
    def from_embedding(cls, embedding: nn.Embedding) -> QuantizedEmbedding:
        """The int8 form of a trained ``embedding`` (a zero row, such as the padding row, stays exactly zero)."""
        weight = embedding.weight.detach().float()
        quantized = cls(*weight.shape).to(weight.device)
        scale = weight.abs().amax(dim=1) / INT8_MAX
        # A zero row has scale 0: dividing by 1 instead keeps it zero and finite.
        quantized.weight.copy_(torch.round(weight / torch.where(scale > 0, scale, 1).unsqueeze(1)).to(torch.int8))
        quantized.scale.copy_(scale)
        return quantized

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """The rows of ``ids`` as floats: shape ``(*ids.shape, embedding_dim)``."""
        # index_select, not weight[ids]: advanced indexing of an int8 table measured 7x slower on CPU (a THUCNews
        # batch's 14,000 n-gram rows: 2.2 ms against 0.3), a third of a bag model's prediction time.
        flat = ids.reshape(-1)
        rows = (
            self.weight.index_select(0, flat).to(self.scale.dtype).mul_(self.scale.index_select(0, flat).unsqueeze(-1))
        )
        return rows.view(*ids.shape, self.embedding_dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8"


__all__ = ["QuantizedEmbedding"]
