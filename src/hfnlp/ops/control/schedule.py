"""Learning-rate schedules edited while training runs: stretched to a new plan, rebuilt, re-synchronised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainingArguments, get_scheduler

Schedule = Callable[[float], float]


def stretch_schedule(schedule: Schedule, start: int, old_total: int, new_total: int) -> Schedule:
    """``schedule`` unchanged up to ``start``; after it, the rest of the schedule stretched (or compressed) so that
    what happened at step ``old_total`` now happens at ``new_total``. Continuous at ``start``."""
    ratio = (old_total - start) / (new_total - start)

    def stretched(step: float) -> float:
        return schedule(step if step <= start else start + (step - start) * ratio)

    return stretched


def fresh_schedule(args: TrainingArguments, total_steps: int) -> Schedule | None:
    """The learning-rate multiplier Trainer would have built for ``total_steps`` (``None`` if not a LambdaLR)."""
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer=probe,
        num_warmup_steps=args.get_warmup_steps(total_steps),
        num_training_steps=total_steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    return scheduler.lr_lambdas[0] if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) else None


def sync_learning_rates(scheduler: torch.optim.lr_scheduler.LambdaLR, optimizer: Any) -> None:
    """Set the optimizer's learning rates to what the (edited) schedule gives at the scheduler's current step."""
    for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * fn(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
