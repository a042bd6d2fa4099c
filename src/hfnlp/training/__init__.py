"""Training: Trainer assembly from a recipe, callbacks, reports and curves shared by every task."""
