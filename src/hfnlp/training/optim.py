"""``LazyAdamW``: AdamW that also takes sparse gradients, updating only the rows a batch touched.

fastText's n-gram tables have hundreds of thousands of rows of which a batch uses a few thousand. With dense
gradients every optimizer step reads and writes the whole table and its two moment buffers (65 M parameters:
0.4 s a step on 2 CPU cores); with ``nn.Embedding(sparse=True)`` and this optimizer a step costs what the batch
uses. PyTorch's ``SparseAdam`` takes only sparse gradients and ``AdamW`` only dense ones, and Trainer wants one
optimizer, hence this class.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class LazyAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias-corrected moments) for dense and sparse gradients.

    Dense gradients get exactly ``torch.optim.AdamW``'s update. For a sparse gradient only the rows it holds are
    updated, moments and weight decay included ("lazy" Adam, as ``torch.optim.SparseAdam``): a row's moments
    decay only on steps that use the row, which is the point for rare n-grams.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"invalid LazyAdamW settings: lr={lr}, betas={betas}, eps={eps}, wd={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"].item()
                settings = dict(
                    lr=lr,
                    beta1=beta1,
                    beta2=beta2,
                    eps=eps,
                    decay=decay,
                    step_size=lr / (1 - beta1**step),
                    correction2=math.sqrt(1 - beta2**step),
                )
                if not param.grad.is_sparse:
                    _adamw_update_(param, param.grad, state["exp_avg"], state["exp_avg_sq"], **settings)
                    continue
                # The same update on copies of the rows the gradient holds, written back into the full tensors.
                grad = param.grad.coalesce()  # one entry per row, repeated rows summed
                rows = grad.indices()[0]
                tensors = [tensor.index_select(0, rows) for tensor in (param, state["exp_avg"], state["exp_avg_sq"])]
                _adamw_update_(tensors[0], grad.values(), tensors[1], tensors[2], **settings)
                for tensor, updated in zip((param, state["exp_avg"], state["exp_avg_sq"]), tensors, strict=True):
                    tensor.index_copy_(0, rows, updated)
        return loss


def _adamw_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    decay: float,
    step_size: float,
    correction2: float,
) -> None:
    """``torch.optim.AdamW``'s update, in place: decoupled decay, moments, bias-corrected step."""
    param.mul_(1 - lr * decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(exp_avg, (exp_avg_sq.sqrt() / correction2).add_(eps), value=-step_size)


# transformers' optimizers whose torch classes take sparse gradients as they are (without weight decay): the others
# are replaced by LazyAdamW for a model with sparse embeddings. Adagrad (Duchi et al. 2011) is the classic optimizer
# for sparse features, and half of Adam's cost per row: one accumulator instead of two moments.
SPARSE_GRADIENT_OPTIMIZERS = ("adagrad", "sgd")


def uses_sparse_gradients(model: torch.nn.Module) -> bool:
    """Whether any embedding of ``model`` produces sparse gradients (``nn.Embedding(sparse=True)``)."""
    return any(getattr(module, "sparse", False) for module in model.modules())


def scale_learning_rates(optimizer: torch.optim.Optimizer, scheduler: Any, factor: float) -> None:
    """Multiply every parameter group's learning rate, and the schedule's base rates, by ``factor``: a new rate
    takes effect mid-run (a live change, a resumed recipe) and the groups keep their ratios (a head's multiplier)."""
    for group in optimizer.param_groups:
        group["lr"] *= factor
    if getattr(scheduler, "base_lrs", None):
        scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
