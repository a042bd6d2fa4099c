"""Training guards: callbacks that stop a run which can only end in a broken model, before it writes one.

:class:`DivergenceGuard` stops training when the loss stops being a number. Trainer itself hides such losses (its
``logging_nan_inf_filter`` replaces them in the logs by the running mean) and would go on to save checkpoints and a
final model full of NaN, with a model card and exit status 0. Recipe checks refuse an infinite learning rate before
the run; this guard catches what gets past them: a finite learning rate that is still far too high, or a live
change (``hfnlp control --lr``).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfnlp.errors import HfnlpError
from hfnlp.training.run_folder import RunFolder


class DivergenceGuard(TrainerCallback):
    """Raise :class:`HfnlpError` as soon as a training loss, an evaluation loss or (before a checkpoint is written)
    a weight is not finite, naming the step, the learning rate and the last good checkpoint.

    Must come after every callback that asks for a checkpoint, to see each request before Trainer writes it; the
    run template adds it last. Under ``accelerate launch`` the process that sees it raises and the launcher ends
    the others.
    """

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self._hook: Any = None
        self._bad_loss: torch.Tensor | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        # The loss of each forward pass, seen where the model returns it: Trainer keeps no per-step loss for callbacks.
        self._hook = kwargs["model"].register_forward_hook(self._record_loss)

    def _record_loss(self, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        loss = getattr(output, "loss", None)
        if module.training and isinstance(loss, torch.Tensor):
            bad = ~torch.isfinite(loss.detach()).all()  # stays on the device: one sync per step, at its end
            self._bad_loss = bad if self._bad_loss is None else self._bad_loss | bad

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if self._bad_loss is not None and bool(self._bad_loss):
            self._stop(f"the training loss stopped being a number at step {state.global_step}", kwargs)
        self._bad_loss = None
        if control.should_save:
            self._check_weights(state, kwargs)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if control.should_save:
            self._check_weights(state, kwargs)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        loss = (kwargs.get("metrics") or {}).get("eval_loss")
        if loss is not None and not torch.isfinite(torch.tensor(float(loss))):
            self._stop(f"the validation loss is {loss} at step {state.global_step}", kwargs)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        self._check_weights(state, kwargs)  # the weights the final model folder is saved from
        self._remove_hook()

    def _check_weights(self, state: TrainerState, kwargs: dict[str, Any]) -> None:
        """Refuse to go on to a checkpoint or the final save of weights that hold NaN or infinity (an optimizer step
        can break them with a loss that was still finite)."""
        # A tensor's smallest and largest values are finite exactly when all are (NaN propagates through both): one
        # reading pass, where isfinite() writes a mask as large as the weights (measured 26x slower on a wide MLP).
        extremes = [torch.stack(torch.aminmax(p.detach())) for p in kwargs["model"].parameters() if p.numel()]
        if extremes and not bool(torch.isfinite(torch.cat(extremes)).all()):
            self._stop(f"the weights stopped being numbers at step {state.global_step}", kwargs)

    def _stop(self, what: str, kwargs: dict[str, Any]) -> None:
        self._remove_hook()
        optimizer = kwargs.get("optimizer")
        rate = f" (learning rate {optimizer.param_groups[0]['lr']:.3g})" if optimizer is not None else ""
        checkpoint = self.run.last_complete_checkpoint()
        if checkpoint is None:
            kept = "no checkpoint was written before"
        else:
            step = checkpoint.rsplit("-", 1)[-1]
            kept = f"the last good checkpoint stays: `hfnlp export {self.run.path} --checkpoint {step}` gives its model"
        raise HfnlpError(
            f"training diverged: {what}{rate}. The learning rate is probably too high (the recipe's, or one raised by "
            f"a live change such as `hfnlp control --lr`). No model folder was written from these weights; {kept}. "
            "Lower training.learning_rate, then resume (--resume) or start a new output_dir."
        )

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
