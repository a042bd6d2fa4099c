"""Length-bucketed training batches: rows of one length together, so that a batch needs no padding.

``transformers``' ``group_by_length`` sorts rows by length within random mega-batches of 50 batches, so most of
its batches still mix a few lengths: a recurrent model must then pack them, and packed sequences run on the
generic kernels (on CPU, measured: a packed BiLSTM step is ~1.5× slower than the fused oneDNN kernel in fp32,
and bf16 autocast does not apply to packed input at all). Sorting the whole epoch by length instead makes almost
every batch a single length, and with short texts (titles, tweets) there are plenty of rows of each length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from hfnlp.tokenization.text import padded_batch


class LengthBucketSampler(Sampler[int]):
    """Row indices for one epoch: rows sorted by length (random order among equal lengths), cut into batches of
    ``batch_size``, the full batches in random order and the one partial batch last.

    The partial batch must stay last: the DataLoader cuts this stream into batches itself, and a short batch in
    the middle would shift every later batch across length boundaries. The order depends only on ``seed`` and
    the epoch (Trainer calls :meth:`set_epoch`): under ``accelerate launch`` every process must draw the same
    order, from which each takes its own batches, and torch's global generator drifts apart between processes
    (dropout draws as many numbers as its batch has elements). Resuming replays the epoch's order too.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths = torch.tensor(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of epoch ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        shuffled = torch.randperm(len(self.lengths), generator=generator)
        by_length = shuffled[torch.argsort(self.lengths[shuffled], stable=True)]
        batches = list(by_length.split(self.batch_size))
        partial = batches.pop() if batches and len(batches[-1]) < self.batch_size else None
        order = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        if partial is not None:
            order.append(partial)
        return iter(torch.cat(order).tolist()) if order else iter([])


class TokenIdsCollator:
    """Batches of token-id rows: ``input_ids`` right-padded with ``pad_token_id`` and their ``attention_mask``
    (:func:`~hfnlp.tokenization.text.padded_batch`), ``label`` as ``labels``: what ``DataCollatorWithPadding`` gives a
    right-padding tokenizer's rows, without building a ``BatchEncoding`` per batch (measured: a fifth of a bag
    model's training step at batch 512)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The batch of ``rows`` (each with ``input_ids`` and, except at prediction, ``label``)."""
        batch = padded_batch([row["input_ids"] for row in rows], self.pad_token_id)
        if rows and "label" in rows[0]:
            batch["labels"] = torch.tensor([row["label"] for row in rows], dtype=torch.long)
        return batch


__all__ = ["LengthBucketSampler", "TokenIdsCollator"]
