"""One training session: a task run with everything around it, then the model card and push.

:func:`train` is what ``hfnlp train`` and ``hfnlp sweep`` call. Around the task run, a :class:`ControlRoom` adds live
control, live status and plots, notifications, the optional dashboard and debug subsets — as ``TrainerCallback``s,
so it works the same for every task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accelerate import PartialState
from transformers import TrainerCallback

from hfnlp.errors import HfnlpError
from hfnlp.hub.model_folder import finish_model_folder, model_card_writer
from hfnlp.ops.control.callback import LiveControlCallback
from hfnlp.ops.dashboard.server import DashboardServer
from hfnlp.ops.debug_subsets import DebugSubsetCallback, TrainLimit, debug_recipe
from hfnlp.ops.live_plots import LivePlotsCallback
from hfnlp.ops.live_status import LiveStatusCallback
from hfnlp.ops.notify import NotifyCallback
from hfnlp.ops.notify_settings import check_notify_settings
from hfnlp.recipe import Recipe
from hfnlp.tasks import get_task
from hfnlp.training.arguments import process_state
from hfnlp.training.run import RunOptions


@dataclass(frozen=True)
class TrainOptions:
    """How to run a recipe, besides the recipe itself.

    ``dashboard_port``: ``None`` serves no dashboard, ``0`` serves it on any free port. ``limit_train`` is
    ``--limit-train``'s text (``1batch``, ``0.5``, ``2000``); ``overfit_batch`` the ``--overfit-batch`` check;
    ``limit_eval`` the rows ``--limit-eval`` keeps of the validation and test splits each.
    """

    resume: bool = False
    dashboard_port: int | None = None
    limit_train: str | None = None
    overfit_batch: bool = False
    limit_eval: int | None = None

    @property
    def limit(self) -> TrainLimit | None:
        """The training subset of a debug run (``None``: the whole training split)."""
        if self.overfit_batch:
            return TrainLimit(batches=1)
        return TrainLimit.parse(self.limit_train) if self.limit_train else None

    def session_recipe(self, recipe: Recipe) -> Recipe:
        """The recipe the session really runs: a debug run gets its own output folder (see :func:`debug_recipe`)."""
        return debug_recipe(recipe, self.limit, self.overfit_batch, self.limit_eval)


def train(recipe: Recipe, options: TrainOptions | None = None) -> dict[str, Any]:
    """Train ``recipe`` and return the run's summary (what ``metrics.json`` holds).

    The run's end or crash is notified; the model folder gets its card before it is put in place, and the main
    process pushes it when the recipe's ``hub`` section asks. The run folder is :meth:`TrainOptions.session_recipe`'s
    ``output_dir``. Notification settings that hold a secret, and a dashboard port that cannot be bound, are
    errors (:class:`~hfnlp.errors.HfnlpError`) raised before anything is written.
    """
    check_notify_settings(recipe.notify)  # before anything is written: the run folder keeps the recipe
    options = options or TrainOptions()
    recipe = options.session_recipe(recipe)
    state = process_state(recipe)
    room = ControlRoom(recipe, options, state)
    try:
        summary = get_task(recipe.task).run(
            recipe,
            RunOptions(
                resume=options.resume,
                callbacks=room.callbacks,
                finish_model_folder=model_card_writer(recipe),
                limit_eval=options.limit_eval,
            ),
        )
    except BaseException as error:
        room.crashed(error)
        raise
    room.finished(summary)
    if state.is_main_process:  # under `accelerate launch`, the push happens once
        finish_model_folder(recipe)
    return summary


class ControlRoom:
    """The callbacks and services of one training run of ``recipe`` (already the session's recipe), in the process
    ``state`` describes (the dashboard runs on the main process only).

    Call :meth:`finished` with the run's summary, or :meth:`crashed` with the exception that escaped the task: they
    send the run-end or crash notification and stop the dashboard.
    """

    def __init__(self, recipe: Recipe, options: TrainOptions, state: PartialState) -> None:
        run_dir = recipe.output_dir
        self.notify = NotifyCallback(recipe.notify, run_dir)
        self.dashboard: DashboardServer | None = None
        if options.dashboard_port is not None and state.is_main_process:
            try:
                self.dashboard = DashboardServer(run_dir, port=options.dashboard_port)
            except HfnlpError:  # e.g. the port is in use: nothing was sent, stop the notification thread
                self.notify.dispatcher.close()
                raise
        self.callbacks: list[TrainerCallback] = [
            LiveControlCallback(run_dir, resume=options.resume),
            LiveStatusCallback(run_dir),
            LivePlotsCallback(run_dir),
            self.notify,
        ]
        limit = options.limit
        if limit is not None:
            training = recipe.training
            batch = training.per_device_train_batch_size * training.gradient_accumulation_steps
            batch *= state.num_processes
            self.callbacks.append(DebugSubsetCallback(limit, batch, recipe.seed, overfit=options.overfit_batch))
        if self.dashboard is not None:
            # Printed, not logged: the address (with its access token) is for the person who asked for it.
            print(f"dashboard: {self.dashboard.start()}", flush=True)

    def finished(self, summary: Mapping[str, Any]) -> None:
        """The task returned: notify the run's end and stop the dashboard."""
        self.notify.run_end(summary)
        self._close()

    def crashed(self, error: BaseException) -> None:
        """An exception escaped the task: notify the crash (with the error) and stop the dashboard."""
        self.notify.crash(error)
        self._close()

    def _close(self) -> None:
        if self.dashboard is not None:
            self.dashboard.close()
