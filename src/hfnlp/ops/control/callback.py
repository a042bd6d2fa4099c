"""The training side of live control: :class:`LiveControlCallback` (how each change works: see
:mod:`hfnlp.ops.control`)."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hfnlp.ops.control.channel import ControlChannel, ControlCommand
from hfnlp.ops.control.schedule import fresh_schedule, stretch_schedule, sync_learning_rates
from hfnlp.training.optim import scale_learning_rates
from hfnlp.training.run_folder import CHECKPOINT_STATE, last_complete_checkpoint

logger = logging.getLogger(__name__)
REPLAYED = ("learning_rate", "num_train_epochs")


@dataclass
class _Moment:
    """Where the training loop stands when requests are applied: the hook's arguments."""

    args: TrainingArguments
    state: TrainerState
    control: TrainerControl
    kwargs: dict[str, Any]
    at_epoch_end: bool


class LiveControlCallback(TrainerCallback):
    """Apply live control requests for the run in ``run_dir`` and record each change (see the module docs)."""

    def __init__(self, run_dir: str | Path, *, resume: bool = False, headroom: int = 100) -> None:
        self.channel = ControlChannel(run_dir)
        self.resume = resume
        self.headroom = headroom
        self._recipe: dict[str, float] = {}
        self._replay: list[dict[str, Any]] = []
        self._pending_lr: list[dict[str, Any]] = []
        self._epochs: float | None = None  # planned number of epochs; None: planned by the recipe's max_steps
        self._planned_steps = 0
        self._steps_per_epoch: int | None = None
        self._capacity = 0
        self._stop_step: int | None = None
        self._checkpoint_requests: list[ControlCommand] = []
        self._main = True
        self._world_size = 1

    # --- the plan -----------------------------------------------------------------------------------------------

    def on_init_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Read the recipe's plan and the recorded changes; give the Trainer's loop headroom to run longer."""
        self._recipe = {
            "learning_rate": args.learning_rate,
            "num_train_epochs": args.num_train_epochs,
            "max_steps": args.max_steps,
        }
        self._main = state.is_world_process_zero
        self._world_size = args.world_size
        if self.resume:
            self._replay = self._recorded_changes()
        else:
            self._start_fresh_log()
        epoch_changes = [entry for entry in self._replay if entry["action"] == "num_train_epochs"]
        self._epochs = (
            epoch_changes[-1]["new"] if epoch_changes else (None if args.max_steps > 0 else args.num_train_epochs)
        )
        if self._finished_before():
            # Nothing left to train: let Trainer see the plan itself, so that it runs no step at all.
            if self._epochs is not None:
                args.num_train_epochs, args.max_steps = self._epochs, -1
        elif self._epochs is None:
            args.max_steps = args.max_steps * self.headroom
        else:
            args.num_train_epochs, args.max_steps = math.ceil(self._epochs) * self.headroom, -1

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Set the planned end, rebuild the schedule for it and re-apply recorded changes (on resume)."""
        self._main = state.is_world_process_zero
        self._capacity = state.max_steps  # the length Trainer's loop was given
        dataloader = kwargs.get("train_dataloader")
        try:
            batches = len(dataloader)
            self._steps_per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
        except TypeError:  # an iterable data set: epochs are unknown, only max_steps plans apply
            self._steps_per_epoch = None
        recipe_steps = self._steps_for(
            None if self._recipe["max_steps"] > 0 else self._recipe["num_train_epochs"], self._recipe["max_steps"]
        )
        self._planned_steps = self._steps_for(self._epochs, self._recipe["max_steps"])
        scheduler = kwargs.get("lr_scheduler")
        schedule = fresh_schedule(args, recipe_steps)
        if schedule is not None and isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            for entry in self._replay:
                if entry["action"] == "num_train_epochs" and "new_max_steps" in entry:
                    schedule = stretch_schedule(schedule, entry["step"], entry["old_max_steps"], entry["new_max_steps"])
            scheduler.lr_lambdas = [schedule] * len(scheduler.lr_lambdas)
            sync_learning_rates(scheduler, kwargs["optimizer"])
        self._set_plan(args, state, self._planned_steps)
        lr_changes = [entry for entry in self._replay if entry["action"] == "learning_rate"]
        done = [entry for entry in lr_changes if entry["step"] <= state.global_step]
        self._pending_lr = [entry for entry in lr_changes if entry["step"] > state.global_step]
        if done:
            self._set_learning_rate(done[-1]["new"], "resume", None, state, kwargs)

    # --- polling ------------------------------------------------------------------------------------------------

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Apply requests (and re-applied changes that are due) before the optimizer step that starts now."""
        while self._pending_lr and self._pending_lr[0]["step"] <= state.global_step:
            self._set_learning_rate(self._pending_lr.pop(0)["new"], "resume", None, state, kwargs)
        self._apply(self._poll(), _Moment(args, state, control, kwargs, at_epoch_end=False))

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Ask Trainer to save now when a checkpoint was requested."""
        if self._checkpoint_requests:
            control.should_save = True

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Requests that arrived during the epoch's last step still count for this epoch."""
        self._apply(self._poll(), _Moment(args, state, control, kwargs, at_epoch_end=True))

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Record requested checkpoints once they are written."""
        for command in self._checkpoint_requests:
            self._record(
                state, command.source, command.id, action="checkpoint", old=None, new=f"checkpoint-{state.global_step}"
            )
        self._checkpoint_requests.clear()

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Correct the final throughput, which Trainer computes from the loop's length (here with headroom)."""
        logs = kwargs.get("logs") or {}
        if "train_samples_per_second" in logs and self._capacity:
            corrected = round(logs["train_samples_per_second"] * state.max_steps / self._capacity, 3)
            logs["train_samples_per_second"] = corrected
            if state.log_history and "train_samples_per_second" in state.log_history[-1]:
                state.log_history[-1]["train_samples_per_second"] = corrected

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        """Answer requests that came too late, so no front end waits for them."""
        for command in self._poll():
            for action in command.actions():
                self._reject(state, command, action, "training had already ended")

    # --- applying -----------------------------------------------------------------------------------------------

    def _poll(self) -> list[ControlCommand]:
        commands = self.channel.receive() if self._main else []
        if self._world_size > 1:  # every process applies the same requests at the same step
            from accelerate.utils import broadcast_object_list

            commands = broadcast_object_list([commands])[0]
        return commands

    def _apply(self, commands: list[ControlCommand], moment: _Moment) -> None:
        for command in commands:
            try:  # front ends check this too; a request queued past them is refused here, never a crash
                command.check_limits(self._recipe["learning_rate"])
            except ValueError as error:
                for action in command.actions():
                    self._reject(moment.state, command, action, str(error))
                continue
            if command.learning_rate is not None:
                self._set_learning_rate(command.learning_rate, command.source, command.id, moment.state, moment.kwargs)
            if command.num_train_epochs is not None:
                self._set_epochs(command, moment)
            if command.stop_after_epoch:
                self._stop_after_epoch(command, moment)
            if command.checkpoint_now:
                if moment.at_epoch_end:
                    moment.control.should_save = True
                self._checkpoint_requests.append(command)

    def _set_learning_rate(
        self, new: float, source: str, request: str | None, state: TrainerState, kwargs: dict[str, Any]
    ) -> None:
        scheduler, optimizer = kwargs.get("lr_scheduler"), kwargs["optimizer"]
        bases = getattr(scheduler, "base_lrs", None)
        old = bases[0] if bases else optimizer.param_groups[0]["lr"]
        unchanged = math.isclose(old, new, rel_tol=1e-9)
        if unchanged and source == "resume":
            return
        scale_learning_rates(optimizer, scheduler, new / old)
        recipe = {"learning_rate": self._recipe["learning_rate"]}
        self._record(state, source, request, action="learning_rate", old=old, new=new, recipe=recipe)

    def _set_epochs(self, command: ControlCommand, moment: _Moment) -> None:
        state = moment.state
        if self._steps_per_epoch is None:
            self._reject(state, command, "num_train_epochs", "the training set has no length, so no epochs")
            return
        requested = command.num_train_epochs
        new_steps = max(math.ceil(requested * self._steps_per_epoch), self._earliest_stop(state, moment.at_epoch_end))
        if new_steps > self._capacity:
            limit = self._capacity / self._steps_per_epoch
            self._reject(state, command, "num_train_epochs", f"at most {limit:g} epochs in this session; use --resume")
            return
        old_steps, step = self._planned_steps, state.global_step
        scheduler = moment.kwargs.get("lr_scheduler")
        stretched = new_steps > step and isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
        if stretched:
            scheduler.lr_lambdas = [stretch_schedule(fn, step, old_steps, new_steps) for fn in scheduler.lr_lambdas]
        self._epochs = new_steps / self._steps_per_epoch
        self._planned_steps = new_steps
        self._set_plan(moment.args, state, new_steps)
        if new_steps <= step:
            moment.control.should_training_stop = True
        extra = {} if math.isclose(self._epochs, requested) else {"requested": requested}
        self._record(
            state,
            command.source,
            command.id,
            action="num_train_epochs",
            old=old_steps / self._steps_per_epoch,
            new=self._epochs,
            **({"old_max_steps": old_steps, "new_max_steps": new_steps} if stretched else {}),
            recipe={"num_train_epochs": self._recipe["num_train_epochs"], "max_steps": self._recipe["max_steps"]},
            **extra,
        )

    def _stop_after_epoch(self, command: ControlCommand, moment: _Moment) -> None:
        state = moment.state
        if self._steps_per_epoch is None:
            self._reject(state, command, "stop_after_epoch", "the training set has no length, so no epochs")
            return
        stop = min(self._earliest_stop(state, moment.at_epoch_end), self._planned_steps)
        self._stop_step = stop
        state.max_steps = stop
        if stop <= state.global_step:
            moment.control.should_training_stop = True
        self._record(
            state,
            command.source,
            command.id,
            action="stop_after_epoch",
            old=self._planned_steps / self._steps_per_epoch,
            new=stop / self._steps_per_epoch,
        )

    def _earliest_stop(self, state: TrainerState, at_epoch_end: bool) -> int:
        """The first step at which training can end cleanly: the end of the epoch under way."""
        per_epoch = self._steps_per_epoch
        if at_epoch_end and state.global_step % per_epoch == 0:
            return state.global_step
        return (state.global_step // per_epoch + 1) * per_epoch

    def _set_plan(self, args: TrainingArguments, state: TrainerState, steps: int) -> None:
        """Make Trainer's state (and arguments, for everything that reads them later) show the planned end."""
        state.max_steps = steps if self._stop_step is None else min(steps, self._stop_step)
        if self._epochs is None:
            args.max_steps = self._recipe["max_steps"]
        else:
            args.num_train_epochs, args.max_steps = self._epochs, -1
        if self._steps_per_epoch:
            state.num_train_epochs = math.ceil(steps / self._steps_per_epoch)

    def _steps_for(self, epochs: float | None, max_steps: int) -> int:
        if epochs is None:
            return max_steps
        if self._steps_per_epoch is None:
            return self._capacity
        return math.ceil(epochs * self._steps_per_epoch)

    # --- the record ---------------------------------------------------------------------------------------------

    def _record(self, state: TrainerState, source: str, request: str | None, **entry: Any) -> None:
        if self._main:
            record = self.channel.record(
                {
                    "step": state.global_step,
                    "epoch": round(state.epoch or 0.0, 4),
                    **entry,
                    "source": source,
                    "request": request,
                    "applied": True,
                }
            )
            logger.info(
                "live control: %s %s → %s at step %d (%s)",
                entry["action"],
                entry["old"],
                entry["new"],
                record["step"],
                source,
            )

    def _reject(self, state: TrainerState, command: ControlCommand, action: str, reason: str) -> None:
        logger.warning("live control: %s rejected: %s", action, reason)
        if self._main:
            self.channel.record(
                {
                    "step": state.global_step,
                    "action": action,
                    "new": getattr(command, action),
                    "source": command.source,
                    "request": command.id,
                    "applied": False,
                    "reason": reason,
                }
            )

    def _recorded_changes(self) -> list[dict[str, Any]]:
        """Applied learning-rate and epoch changes whose recipe setting is still the same (they are re-applied)."""
        changes = []
        for entry in self.channel.entries():
            if not entry.get("applied") or entry.get("action") not in REPLAYED:
                continue
            recipe = entry.get("recipe", {})
            if all(self._recipe.get(key) == value for key, value in recipe.items()):
                changes.append(entry)
            else:
                logger.warning(
                    "live control: not re-applying %s → %s from step %d: the recipe's value changed since (%s)",
                    entry["action"],
                    entry["new"],
                    entry["step"],
                    recipe,
                )
        return changes

    def _finished_before(self) -> bool:
        """Whether the checkpoint being resumed from already reached the plan (then no step must run)."""
        checkpoint = last_complete_checkpoint(self.channel.run_dir) if self.resume else None
        if checkpoint is None:
            return False
        saved = json.loads((Path(checkpoint) / CHECKPOINT_STATE).read_text())
        if self._epochs is None:
            return saved.get("global_step", 0) >= self._recipe["max_steps"]
        return saved.get("epoch", 0) >= self._epochs - 1e-9

    def _start_fresh_log(self) -> None:
        """A new run in a folder holding an earlier attempt's log: keep that log aside, drop its stale requests."""
        if not self._main:
            return
        log = self.channel.log_path
        if log.exists():
            log.rename(log.with_name(f"{log.stem}.{int(log.stat().st_mtime)}{log.suffix}"))
        for stale in self.channel.inbox.glob("*.json") if self.channel.inbox.is_dir() else ():
            stale.unlink(missing_ok=True)
