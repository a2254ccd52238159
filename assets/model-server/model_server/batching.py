"""Model calls off the event loop, with adaptive micro-batching.

Requests on the event loop submit their rows and await a future. One batcher thread per worker
takes the first waiting request, then keeps collecting for at most `max_wait` seconds, but only
while more requests are in flight in this worker than it has collected, and only up to
`max_rows` rows. A lone request therefore never waits, and under load one model call serves
many requests: per-call overhead (validation, tree set-up, Python dispatch) is paid once per
batch instead of once per request. The batch's answers go back to the loop in one hand-over.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable, List, Optional, Tuple

import numpy as np

from .prediction import Prediction

Predict = Callable[[np.ndarray], Prediction]
#: Told of every model call: (requests it served, rows, seconds in the model).
OnBatch = Callable[[int, int, float], None]


class _Pending:
    __slots__ = ("rows", "future", "loop")

    def __init__(self, rows: np.ndarray, future: asyncio.Future, loop: asyncio.AbstractEventLoop):
        self.rows = rows
        self.future = future
        self.loop = loop


def _settle(outcomes: List[Tuple[asyncio.Future, Optional[Prediction], Optional[BaseException]]]) -> None:
    """Runs on the event loop: hands each request its answer (unless it gave up meanwhile)."""
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class MicroBatcher:
    def __init__(
        self,
        predict: Predict,
        max_rows: int = 64,
        max_wait: float = 0.002,
        on_batch: Optional[OnBatch] = None,
    ):
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait
        self._on_batch = on_batch
        self._queue: "queue.SimpleQueue[_Pending]" = queue.SimpleQueue()
        # Changed on the event loop only; the batcher thread reads it (a stale read costs at
        # most one short wait), so it needs no lock.
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        """A request has arrived and may submit rows: the batcher may wait for it."""
        self._in_flight += 1

    def end(self) -> None:
        self._in_flight -= 1

    def queued(self) -> int:
        """Requests whose rows wait for a model call."""
        return self._queue.qsize()

    def submit(self, rows: np.ndarray) -> Awaitable[Prediction]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Pending(rows, future, loop))
        return future

    def _run(self) -> None:
        while True:
            batch = self._collect(self._queue.get())
            outcomes = self._serve(batch)
            batch[0].loop.call_soon_threadsafe(_settle, outcomes)

    def _collect(self, first: _Pending) -> List[_Pending]:
        batch = [first]
        rows = len(first.rows)
        deadline = time.monotonic() + self._max_wait
        while rows < self._max_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if self._in_flight <= len(batch) or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            batch.append(item)
            rows += len(item.rows)
        return batch

    def _serve(self, batch: List[_Pending]):
        # Rows of different widths cannot share a call; each width is its own group.
        groups: dict = {}
        for p in batch:
            groups.setdefault(p.rows.shape[1], []).append(p)
        outcomes: list = []
        for group in groups.values():
            outcomes.extend(self._serve_group(group))
        return outcomes

    def _serve_group(self, group: List[_Pending]):
        if len(group) == 1:
            return [self._serve_one(group[0])]
        rows = np.concatenate([p.rows for p in group])
        started = time.perf_counter()
        try:
            result = self._predict(rows)
        except Exception:  # one request's rows may be the cause: serve each alone
            return [self._serve_one(p) for p in group]
        if self._on_batch:
            self._on_batch(len(group), len(rows), time.perf_counter() - started)
        outcomes = []
        start = 0
        for p in group:
            end = start + len(p.rows)
            probabilities = result.probabilities[start:end] if result.probabilities is not None else None
            outcomes.append((p.future, Prediction(result.labels[start:end], probabilities), None))
            start = end
        return outcomes

    def _serve_one(self, p: _Pending):
        started = time.perf_counter()
        try:
            result = self._predict(p.rows)
        except BaseException as err:  # handed to the request, never kills the thread
            return (p.future, None, err)
        if self._on_batch:
            self._on_batch(1, len(p.rows), time.perf_counter() - started)
        return (p.future, result, None)


class SerialPredictor:
    """BATCHING=false: every request gets its own model call, still off the event loop."""

    def __init__(self, predict: Predict, on_batch: Optional[OnBatch] = None):
        self._predict = predict
        self._on_batch = on_batch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        # Each counter is written by one thread only (submitted on the event loop, started in the
        # model thread), so neither loses an update; their difference is the queue.
        self._submitted = 0
        self._started = 0

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass

    def queued(self) -> int:
        """Requests whose rows wait for a model call."""
        return self._submitted - self._started

    def submit(self, rows: np.ndarray) -> Awaitable[Prediction]:
        self._submitted += 1
        return asyncio.get_running_loop().run_in_executor(self._pool, self._timed, rows)

    def _timed(self, rows: np.ndarray) -> Prediction:
        self._started += 1
        started = time.perf_counter()
        result = self._predict(rows)
        if self._on_batch:
            self._on_batch(1, len(rows), time.perf_counter() - started)
        return result
