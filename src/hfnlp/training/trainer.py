"""``HfnlpTrainer``: ``transformers.Trainer`` with length-bucketed batches, training batches fetched from Arrow in one
piece, and gradient clipping that costs nothing when it clips nothing on a CPU. Every task trains with it (or a
subclass of it)."""

from __future__ import annotations

import pyarrow.compute
import torch
from accelerate import DistributedType
from datasets import Dataset
from torch.utils.data import Sampler
from transformers import Trainer

from hfnlp.training.batching import ArrowRows, LengthBucketSampler, TokenIdsCollator

# Where accelerate's clip_grad_norm_ is torch's plain one after unscaling: no sharded or DeepSpeed-owned gradients.
_PLAIN_GRADIENTS = (DistributedType.NO, DistributedType.MULTI_CPU)


class HfnlpTrainer(Trainer):
    """``Trainer`` whose ``group_by_length`` batches come from :class:`~hfnlp.training.batching.LengthBucketSampler`,
    whose training batches for :class:`~hfnlp.training.batching.TokenIdsCollator` come from
    :class:`~hfnlp.training.batching.ArrowRows`, and whose gradient clipping rescales the gradients only when their
    norm is over ``max_grad_norm``.

    Lengths are those of ``input_ids`` (Trainer has already dropped the ``length`` column, which the model does
    not take, when it builds the sampler); datasets without ``input_ids`` (images) keep Trainer's own sampling.
    """

    def _remove_unused_columns(self, dataset: Dataset, description: str | None = None) -> Dataset | ArrowRows:
        dataset = super()._remove_unused_columns(dataset, description)
        if description == "Training" and isinstance(self.data_collator, TokenIdsCollator):
            return ArrowRows(dataset)
        return dataset

    def _get_train_sampler(self, train_dataset: Dataset | ArrowRows | None = None) -> Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        ids = None
        if isinstance(dataset, ArrowRows) and "input_ids" in dataset.table.column_names:
            ids = dataset.table["input_ids"]
        elif isinstance(dataset, Dataset) and "input_ids" in dataset.column_names:
            ids = dataset.with_format("arrow")["input_ids"]
        if self.args.train_sampling_strategy == "group_by_length" and ids is not None:
            lengths = pyarrow.compute.list_value_length(ids)
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return LengthBucketSampler(lengths.to_numpy(), self.args.train_batch_size, seed=seed)
        return super()._get_train_sampler(train_dataset)

    def _clip_grad_norm(self, model: torch.nn.Module) -> torch.Tensor:
        """The gradients' total norm, after scaling them down to ``max_grad_norm`` if it is over.

        torch multiplies every gradient by the clamped factor even when it is 1, so that a GPU need not wait for
        the norm; a CPU has nothing to wait for, and that multiplication is a whole pass over the gradients
        (measured: 4% of a THUCNews bag model's training step, whose norm stays near 0.1 under the default 1.0).
        """
        if self.args.device.type != "cpu" or self.accelerator.distributed_type not in _PLAIN_GRADIENTS:
            return super()._clip_grad_norm(model)
        self.accelerator.unscale_gradients()
        parameters = [param for param in model.parameters() if param.grad is not None]
        norm = torch.nn.utils.get_total_norm([param.grad for param in parameters])
        if norm > self.args.max_grad_norm:
            torch.nn.utils.clip_grads_with_norm_(parameters, self.args.max_grad_norm, norm)
        return norm


__all__ = ["HfnlpTrainer"]
