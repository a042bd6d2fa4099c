"""``LazyAdamW``: AdamW that also takes sparse gradients, updating only the rows a batch touched.

fastText's n-gram tables have hundreds of thousands of rows of which a batch uses a few thousand. With dense
gradients every optimizer step reads and writes the whole table and its two moment buffers (65 M parameters:
0.4 s a step on 2 CPU cores); with ``nn.Embedding(sparse=True)`` and this optimizer a step costs what the batch
uses. PyTorch's ``SparseAdam`` takes only sparse gradients and ``AdamW`` only dense ones, and Trainer wants one
optimizer, hence this class.

Even lazily, Adam's update of a row reads and writes the row and its two moments: on 2 CPU cores it is the largest
part of a bag model's training step (measured: 7.4 ms with torch's fused AdamW kernel for the 13,500 rows a THUCNews
batch of 512 titles uses, against 3.4 ms for the table lookup's forward and backward passes). Row-wise Adagrad
(``sparse_rule="rowwise_adagrad"``), the rule large recommendation models use for their embedding tables (FBGEMM's
``rowwise_adagrad``; Naumov et al. 2019, DLRM), keeps one accumulator per row instead of two moments per weight
(measured in a plain loop on THUCNews: 0.53 s of updates an epoch against 1.3 s for lazy Adam before its fused
kernel), and Adagrad's per-feature step size suits rare n-grams (Duchi et al. 2011).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

# transformers' optimizers whose torch classes take sparse gradients as they are (without weight decay): the others
# are replaced by LazyAdamW for a model with sparse embeddings. Adagrad (Duchi et al. 2011) is the classic optimizer
# for sparse features, and half of Adam's cost per row: one accumulator instead of two moments.
SPARSE_GRADIENT_OPTIMIZERS = ("adagrad", "sgd")
# How LazyAdamW updates the rows of a sparse gradient (recipe key training.sparse_optimizer).
SPARSE_RULES = ("adamw", "rowwise_adagrad")


class LazyAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias-corrected moments) for dense and sparse gradients.

    Dense gradients get exactly ``torch.optim.AdamW(fused=True)``'s update. For a sparse gradient only the rows it
    holds are updated, moments and weight decay included ("lazy" Adam, as ``torch.optim.SparseAdam``): a row's
    moments decay only on steps that use the row, which is the point for rare n-grams. With ``sparse_rule=
    "rowwise_adagrad"`` those rows take row-wise Adagrad instead: a row's accumulator grows by the mean square of its
    gradient, and the row moves by the rate times the gradient over the accumulator's square root (weight decay,
    decoupled, on the rows used). Either rule updates sparse rows at ``lr * sparse_lr_ratio``; the ratio is a group
    setting, so a schedule that scales ``lr`` scales the dense and the sparse rates alike.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        sparse_rule: str = "adamw",
        sparse_lr_ratio: float = 1.0,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= beta < 1 for beta in betas) or sparse_lr_ratio <= 0:
            raise ValueError(
                f"invalid LazyAdamW settings: lr={lr}, betas={betas}, eps={eps}, wd={weight_decay}, "
                f"sparse_lr_ratio={sparse_lr_ratio}"
            )
        if sparse_rule not in SPARSE_RULES:
            raise ValueError(f"sparse_rule {sparse_rule!r}: use one of {', '.join(SPARSE_RULES)}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, {**defaults, "sparse_rule": sparse_rule, "sparse_lr_ratio": sparse_lr_ratio})

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
                rate = lr * group["sparse_lr_ratio"] if param.grad.is_sparse else lr
                if param.grad.is_sparse and group["sparse_rule"] == "rowwise_adagrad":
                    _rowwise_adagrad_update_(param, state, rate, eps, decay)
                    continue
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                # The fused kernel reads the step count on the parameter's device; a loaded state keeps it on the CPU.
                state["step"] = state["step"].to(param.device) + 1
                settings = dict(lr=rate, beta1=beta1, beta2=beta2, eps=eps, decay=decay, step=state["step"])
                if not param.grad.is_sparse:
                    _fused_adamw_(param, param.grad, state["exp_avg"], state["exp_avg_sq"], **settings)
                    continue
                # The same update on copies of the rows the gradient holds, written back into the full tensors.
                grad = param.grad.coalesce()  # one entry per row, repeated rows summed
                rows, values = grad.indices()[0], grad.values()
                moments = [state[key].index_select(0, rows) for key in ("exp_avg", "exp_avg_sq")]
                if decay:  # decoupled decay scales the rows themselves: copy them out and back
                    weights = param.index_select(0, rows)
                    _fused_adamw_(weights, values, *moments, **settings)
                    param.index_copy_(0, rows, weights)
                else:  # the update is an addition: computed from zeros and added, one row copy fewer
                    update = torch.zeros_like(values)
                    _fused_adamw_(update, values, *moments, **settings)
                    param.index_add_(0, rows, update)
                for key, updated in zip(("exp_avg", "exp_avg_sq"), moments, strict=True):
                    state[key].index_copy_(0, rows, updated)
        return loss


def _rowwise_adagrad_update_(param: torch.Tensor, state: dict, lr: float, eps: float, decay: float) -> None:
    """Row-wise Adagrad on the rows of ``param``'s sparse gradient, in place (see :class:`LazyAdamW`)."""
    if not state:
        state["row_sum"] = torch.zeros(param.shape[0], dtype=param.dtype, device=param.device)
    grad = param.grad.coalesce()  # one entry per row, repeated rows summed
    rows, values = grad.indices()[0], grad.values()
    if decay:
        param.index_copy_(0, rows, param.index_select(0, rows).mul_(1 - lr * decay))
    row_sum = state["row_sum"].index_select(0, rows).add_(values.square().mean(dim=1))
    state["row_sum"].index_copy_(0, rows, row_sum)
    param.index_add_(0, rows, values / row_sum.sqrt_().add_(eps).unsqueeze(1), alpha=-lr)


def _fused_adamw_(
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
    step: torch.Tensor,
) -> None:
    """``torch.optim.AdamW``'s update of ``param`` and its moments at ``step`` (already counted), in place, by the
    fused kernel ``AdamW(fused=True)`` runs: one pass over the rows instead of one per operation (measured on the
    13,500 rows a THUCNews batch of 512 titles uses: 7.4 ms for the whole lazy update, against 12 ms with the
    operations one by one)."""
    torch._fused_adamw_(
        [param],
        [grad],
        [exp_avg],
        [exp_avg_sq],
        [],
        [step],
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        weight_decay=decay,
        eps=eps,
        amsgrad=False,
        maximize=False,
    )


def coalesce_sparse_gradients(model: torch.nn.Module) -> list[Any]:
    """Make every sparse gradient of ``model`` coalesced (one entry per row) as soon as it is accumulated; returns the
    hooks' handles.

    Trainer takes the gradient norm at every step, for its logs even without clipping: on an uncoalesced sparse
    gradient (one entry per n-gram occurrence) torch coalesces a copy for that, then the optimizer coalesces again
    (measured on a THUCNews batch of 512 titles: 13.6 ms for the norm, against 0.2 ms on a coalesced gradient).
    """
    return [
        module.weight.register_post_accumulate_grad_hook(_coalesce_gradient)
        for module in model.modules()
        if getattr(module, "sparse", False) and getattr(module, "weight", None) is not None
    ]


def _coalesce_gradient(param: torch.Tensor) -> None:
    if param.grad is not None and param.grad.is_sparse:
        param.grad = param.grad.coalesce()


def trains_with_lazy_adamw(optim: str, sparse_embeddings: bool) -> bool:
    """Whether a model with (or without) ``sparse_embeddings`` trains with :class:`LazyAdamW` in place of the
    recipe's ``optim``: sparse gradients, and an optimizer whose torch class cannot take them."""
    return sparse_embeddings and optim not in SPARSE_GRADIENT_OPTIMIZERS


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
