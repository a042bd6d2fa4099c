"""Live control of a running training: learning rate, number of epochs, stop after this epoch, checkpoint now.

Front ends (``hfnlp control``, the dashboard) submit requests through
:class:`~hfnlp.ops.control.channel.ControlChannel`; :class:`~hfnlp.ops.control.callback.LiveControlCallback`, a
plain ``TrainerCallback``, applies them between optimizer steps. How each change works with transformers'
training loop (5.x):

- **Learning rate** — applied before the next optimizer step. The scheduler is rescaled, not fought:
  ``scheduler.base_lrs`` and the optimizer's current learning rates are multiplied by new/old, so warm-up and
  decay go on from where they are, at the new scale. ``old`` and ``new`` are the schedule's base (peak) rate. A
  new rate must be finite, positive and at most ``MAX_LR_FACTOR`` (100) × the recipe's; front ends refuse others,
  and the callback rejects (records, never crashes on) any that reach it.
- **Number of epochs** — ``Trainer`` fixes the length of its epoch loop when training starts, so the callback
  gives the loop headroom (``headroom`` × the planned length) in ``on_init_end`` and then keeps
  ``state.max_steps`` at the *planned* end, where ``DefaultFlowCallback`` stops training with the usual final
  evaluation and checkpoint. The learning-rate schedule is built for the planned length (not the headroom); a
  change of plan stretches or compresses the *remaining* schedule so that it still ends at the new last step
  (no jump in the learning rate). Extending really trains the extra epochs; shortening below the epoch under
  way finishes that epoch.
- **Stop after this epoch** — a one-off: the run ends cleanly at the end of the current epoch (evaluation,
  checkpoint, best model, test, saving as usual). It does not change the plan: ``--resume`` continues.
- **Checkpoint now** — a checkpoint is written at the end of the current optimizer step.

Every action is recorded in ``RUN_DIR/control_log.jsonl``. On ``--resume`` the recorded learning-rate and epoch
changes are re-applied (learning-rate changes at their recorded step, so the resumed run follows the same
schedule), unless the recipe's own value of that setting was changed since — then the recipe wins.

This package file imports nothing, so that front ends load only the standard-library channel.
"""
