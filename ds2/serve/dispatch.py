"""Batch Dispatch (DS2 section 7): the model's work for all the server's streams, in one thread.

Each stream hands over its next step (`step`), or a whole utterance (`log_probs`), and awaits it.
The dispatcher's thread takes the oldest job, then waits at most `max_wait` seconds from that
job's arrival for others (up to `max_batch`; no longer once every client in progress has a job
in it; not at all for a stream's last step or a whole utterance, whose client is waiting for
the result), and runs them together: the streaming steps as `ds2.infer.stream.run_steps` (one
forward pass per group of equal shapes), the whole utterances as one padded batch. While a batch runs, the next jobs queue up, so under load batches fill
without waiting. With batching off every job runs alone, in arrival order.

A batch that fails is run again job by job, so a failure stays with the stream that caused it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ds2.infer.stream import NOT_FINAL, Step, StreamingRecognizer, run_steps

log = logging.getLogger(__name__)


@dataclass
class _Job:
    kind: str  # "step" (a streaming step) or "utterance" (log-probs of whole-utterance features)
    payload: tuple
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    urgent: bool = False  # runs with the jobs already queued, without waiting for more
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class DispatchStats:
    """Counts since start: forward passes and the jobs they held."""

    batches: int = 0
    jobs: int = 0
    largest: int = 0

    @property
    def mean_batch(self) -> float:
        return self.jobs / self.batches if self.batches else 0.0


class BatchDispatcher:
    """Runs a backend's (ds2.infer.acoustic) forward passes for many streams in one thread."""

    def __init__(self, model, batching: bool = True, max_batch: int = 32, max_wait: float = 0.010,
                 clients=None):
        """`clients()`: how many streams and uploads are in progress (none waits for a batch that
        holds them all already); None: unknown."""
        self.model = model
        self.clients = clients
        self.batching = batching
        self.max_batch = max_batch if batching else 1
        self.max_wait = max_wait if batching else 0.0
        self.stats = DispatchStats()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ds2-dispatch", daemon=True)
        self._thread.start()

    # -- the streams' side (the event loop) ---------------------------------------------------
    async def step(self, rec: StreamingRecognizer, step: Step) -> None:
        """Run `step` of the stream `rec`; when this returns, `rec` holds its outputs. A stream's
        last step does not wait for others: its client is waiting for the final result."""
        await self._submit("step", (rec, step), urgent=step.valid_until != NOT_FINAL)

    async def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """(T', V) log-probs of one whole utterance's (T, F) features (its client is waiting: no wait)."""
        return await self._submit("utterance", (feats,), urgent=True)

    def _submit(self, kind: str, payload: tuple, urgent: bool) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(kind, payload, future, loop, urgent))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    # -- the dispatcher's thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            deadline = job.arrived + (0.0 if job.urgent else self.max_wait)
            while len(batch) < self.max_batch:
                if self.clients is not None and len(batch) >= self.clients():
                    break  # every client in progress is in this batch: nobody else can join
                try:
                    wait = deadline - time.monotonic()
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Job]) -> None:
        self.stats.batches += 1
        self.stats.jobs += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        applied = [job.payload[0].steps_applied if job.kind == "step" else 0 for job in batch]
        try:
            results = self._compute(batch)
        except Exception as e:  # noqa: BLE001 - find the job that fails, let the others through
            if len(batch) == 1:
                log.exception("a forward pass failed")
                _resolve(batch[0], error=RuntimeError(f"the model failed on this audio ({type(e).__name__})"))
                return
            for job, before in zip(batch, applied):
                if job.kind == "step" and job.payload[0].steps_applied > before:
                    _resolve(job)  # its group ran before the failure
                else:
                    self._run_batch([job])
            return
        for job, result in zip(batch, results):
            _resolve(job, result)

    def _compute(self, batch: list[_Job]) -> list:
        results: list = [None] * len(batch)
        steps = [job.payload for job in batch if job.kind == "step"]
        if steps:
            run_steps(self.model, steps)
        utterances = [i for i, job in enumerate(batch) if job.kind == "utterance"]
        if utterances:
            for i, out in zip(utterances, self.model.log_probs([batch[i].payload[0] for i in utterances])):
                results[i] = out
        return results


def _resolve(job: _Job, result=None, error: Exception | None = None) -> None:
    def settle():
        if job.future.done():  # the stream went away meanwhile
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the event loop has closed (shutdown)
        pass
