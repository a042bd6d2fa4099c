"""Dynamic batching: requests that arrive together share one forward pass of the model.

Requests put their inputs on an asyncio queue; one worker takes the oldest request, gathers those that arrive while
the model runs the previous batch (with the model idle: for ``max_wait_ms`` at most, default 0) up to
``max_batch_size`` inputs, runs the model once on all of them in a thread
(the event loop keeps accepting and answering requests meanwhile) and hands each request its own outputs. One
worker means one forward pass at a time: the model and its tokenizer are never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hfnlp.serving.predictors import Predictor

logger = logging.getLogger(__name__)


class ModelFailure(Exception):
    """The model raised on a batch; the message is one line, the traceback is in the server log."""


@dataclass
class _Request:
    inputs: Sequence[Any]
    top_k: int | None
    answer: asyncio.Future = field(repr=False)


class Batcher:
    """Gathers concurrent requests into batches for one :class:`~hfnlp.serving.predictors.Predictor`.

    Without ``batching`` each request runs alone (the comparison ``scripts/bench_serve.py`` makes), still one at a
    time. ``batches`` and ``largest_batch`` count what the worker did, for ``/health`` watchers and tests.
    """

    def __init__(
        self, predictor: Predictor, max_batch_size: int = 32, max_wait_ms: float = 0.0, batching: bool = True
    ) -> None:
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.batching = batching
        self.batches = 0
        self.largest_batch = 0
        self._queue: asyncio.Queue[_Request] | None = None
        self._held: _Request | None = None  # taken from the queue but too big for the batch being gathered
        self._worker: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        """Whether the worker is running, so requests get answered."""
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(), name="hfnlp-serve-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still waiting fail."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        waiting = [self._held] if self._held else []
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for request in waiting:
            if not request.answer.done():
                request.answer.set_exception(ModelFailure("the server is shutting down"))

    async def predict(self, inputs: Sequence[Any], top_k: int | None = None) -> list[Any]:
        """Each of ``inputs`` through the model, in a batch with whatever else is waiting, shaped by ``top_k``.

        Raises:
            ModelFailure: The model raised on the batch.
        """
        if not self.ready or self._queue is None:
            raise ModelFailure("the model worker is not running")
        request = _Request(inputs, top_k, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(request)
        return await request.answer

    async def _work(self) -> None:
        # The next batch gathers while the model runs the current one: under load, batches form by themselves (what
        # arrived during a forward pass), and the event loop reads and answers HTTP requests on one core while the
        # forward pass (which releases the GIL) runs on another. Forward passes still run one at a time.
        running: asyncio.Task | None = None
        while True:
            batch = await self._gather(running)
            if running is not None:
                await running
            # A client that went away before its turn costs nothing.
            batch = [request for request in batch if not request.answer.done()]
            running = asyncio.create_task(self._run(batch)) if batch else None

    async def _gather(self, running: asyncio.Task | None) -> list[_Request]:
        """The oldest request and those that join it: while ``running`` (the model's current batch) lasts, or, with
        the model idle, for ``max_wait`` at most; never more than ``max_batch_size`` inputs."""
        assert self._queue is not None
        first, self._held = (self._held, None) if self._held else (await self._queue.get(), None)
        batch, size = [first], len(first.inputs)
        if not self.batching:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while size < self.max_batch_size:
            request = await self._next(running, deadline - loop.time())
            if request is None:
                break
            if size + len(request.inputs) > self.max_batch_size:
                self._held = request  # the first of the next batch: requests are answered in arrival order
                break
            batch.append(request)
            size += len(request.inputs)
        return batch

    async def _next(self, running: asyncio.Task | None, idle_wait: float) -> _Request | None:
        """The next queued request; waiting for one while ``running`` lasts (or, idle, ``idle_wait`` seconds)."""
        assert self._queue is not None
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()
        busy = running is not None and not running.done()
        if not busy and idle_wait <= 0:
            return None
        getter = asyncio.ensure_future(self._queue.get())
        done, _ = await asyncio.wait(
            {getter, running} if busy else {getter},
            timeout=None if busy else idle_wait,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if getter in done:
            return getter.result()
        # Queue.get leaves an item it was woken for in the queue when cancelled: nothing is lost.
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        return None if not busy else await self._next(None, 0)

    async def _run(self, batch: list[_Request]) -> None:
        inputs = [item for request in batch for item in request.inputs]
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(inputs))
        try:
            outputs = await asyncio.to_thread(self.predictor.forward, inputs)
            answers, start = [], 0
            for request in batch:
                end = start + len(request.inputs)
                answers.append([self.predictor.finish(output, request.top_k) for output in outputs[start:end]])
                start = end
        except Exception as error:
            logger.exception("the model failed on a batch of %d input(s)", len(inputs))
            failure = ModelFailure(f"the model failed: {type(error).__name__}: {' '.join(str(error).split())}")
            for request in batch:
                if not request.answer.done():
                    request.answer.set_exception(failure)
            return
        for request, answer in zip(batch, answers, strict=True):
            if not request.answer.done():
                request.answer.set_result(answer)
