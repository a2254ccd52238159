"""Adaptive micro-batching: concurrent requests in one worker share one model call.

Request threads submit their rows and wait. A single batcher thread takes the first waiting
request, then keeps collecting for at most `max_wait` seconds, but only while more requests are
in flight in this worker than it has collected, and only up to `max_rows` rows. A lone request
therefore never waits, and under load one model call serves many requests: per-call overhead
(validation, tree set-up, Python dispatch) is paid once per batch instead of once per request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from .model_loader import Prediction

log = logging.getLogger("model_server")


@dataclass
class _Pending:
    rows: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: Optional[Prediction] = None
    error: Optional[BaseException] = None


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[np.ndarray], Prediction],
        max_rows: int = 64,
        max_wait: float = 0.002,
        on_batch: Optional[Callable[[int, int], None]] = None,
    ):
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait
        self._on_batch = on_batch
        self._queue: "queue.SimpleQueue[_Pending]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        """A request has arrived and may submit rows: the batcher may wait for it."""
        with self._lock:
            self._in_flight += 1

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def predict(self, rows: np.ndarray) -> Prediction:
        pending = _Pending(rows)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _run(self) -> None:
        while True:
            batch = self._collect(self._queue.get())
            try:
                self._serve(batch)
            except BaseException as err:  # noqa: BLE001 - never let the batcher thread die
                for p in batch:
                    if not p.done.is_set():
                        p.error = err
                        p.done.set()

    def _collect(self, first: _Pending) -> List[_Pending]:
        batch = [first]
        rows = len(first.rows)
        deadline = time.monotonic() + self._max_wait
        while rows < self._max_rows:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                with self._lock:
                    others_coming = self._in_flight > len(batch)
                remaining = deadline - time.monotonic()
                if not others_coming or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            batch.append(item)
            rows += len(item.rows)
        return batch

    def _serve(self, batch: List[_Pending]) -> None:
        # Rows of different widths cannot share a call; each width is its own group.
        groups: dict = {}
        for p in batch:
            groups.setdefault(p.rows.shape[1], []).append(p)
        for group in groups.values():
            self._serve_group(group)

    def _serve_group(self, group: List[_Pending]) -> None:
        if len(group) == 1:
            self._serve_one(group[0])
            return
        rows = np.concatenate([p.rows for p in group])
        try:
            result = self._predict(rows)
        except Exception:  # noqa: BLE001 - one request's rows may be the cause: serve each alone
            for p in group:
                self._serve_one(p)
            return
        if self._on_batch:
            self._on_batch(len(group), len(rows))
        start = 0
        for p in group:
            end = start + len(p.rows)
            p.result = Prediction(
                result.labels[start:end],
                result.probabilities[start:end] if result.probabilities is not None else None,
            )
            p.done.set()
            start = end

    def _serve_one(self, p: _Pending) -> None:
        try:
            p.result = self._predict(p.rows)
            if self._on_batch:
                self._on_batch(1, len(p.rows))
        except BaseException as err:  # noqa: BLE001 - handed to the request's own thread
            p.error = err
        p.done.set()
