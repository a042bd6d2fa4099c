"""Everything ``hfnlp train`` adds around a task run: live control, live status and plots, notifications,
the optional dashboard and debug subsets — as ``TrainerCallback``s, so it works the same for every task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accelerate import PartialState
from transformers import TrainerCallback

from hfnlp.dashboard.server import DashboardServer
from hfnlp.dashboard.status import LiveStatusCallback
from hfnlp.recipe import Recipe
from hfnlp.training.control import LiveControlCallback
from hfnlp.training.debug import DebugSubsetCallback, TrainLimit, debug_recipe
from hfnlp.training.live_plots import LivePlotsCallback
from hfnlp.training.notify import NotifyCallback


class ControlRoom:
    """The callbacks and services of one training run.

    ``recipe`` is the recipe to run (debug options give it its own output folder). Call :meth:`finished` with
    the run's summary, or :meth:`crashed` with the exception that escaped the task: they send the run-end or
    crash notification and stop the dashboard.
    """

    def __init__(
        self,
        recipe: Recipe,
        *,
        resume: bool = False,
        dashboard_port: int | None = None,
        limit_train: str | None = None,
        overfit_batch: bool = False,
    ) -> None:
        limit = TrainLimit(batches=1) if overfit_batch else TrainLimit.parse(limit_train) if limit_train else None
        self.recipe = debug_recipe(recipe, limit, overfit_batch)
        run_dir = self.recipe.output_dir
        self.notify = NotifyCallback(self.recipe.notify, run_dir)
        self.callbacks: list[TrainerCallback] = [
            LiveControlCallback(run_dir, resume=resume),
            LiveStatusCallback(run_dir),
            LivePlotsCallback(run_dir),
            self.notify,
        ]
        if limit is not None:
            training = self.recipe.training
            batch = training.per_device_train_batch_size * training.gradient_accumulation_steps
            batch *= PartialState().num_processes
            self.callbacks.append(DebugSubsetCallback(limit, batch, self.recipe.seed, overfit=overfit_batch))
        self.dashboard: DashboardServer | None = None
        if dashboard_port is not None and PartialState().is_main_process:
            self.dashboard = DashboardServer(run_dir, port=dashboard_port)
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
