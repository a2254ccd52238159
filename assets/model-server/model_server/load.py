"""What one worker holds: the predictions it admitted (working on or waiting for) against its share of
MAX_CONCURRENT_REQUESTS, and the high-resolution samples of that load that the service scales on.

Admission happens on the event loop; the sampler thread reads the counters once a second. A read
that races an update is off by one request for one sample, which a scaling signal can afford, so
there is no lock on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List


class Admission:
    """The predictions a worker holds at once, and the most it admits (its share of the task's cap)."""

    __slots__ = ("limit", "admitted", "_peak")

    def __init__(self, limit: int):
        self.limit = limit
        self.admitted = 0
        self._peak = 0

    def try_admit(self) -> bool:
        if self.admitted >= self.limit:
            return False
        self.admitted += 1
        if self.admitted > self._peak:
            self._peak = self.admitted
        return True

    def release(self) -> None:
        self.admitted -= 1

    def take_peak(self) -> int:
        """The most predictions held at once since the last call (never fewer than held now)."""
        peak, self._peak = max(self._peak, self.admitted), self.admitted
        return peak


@dataclass
class LoadSamples:
    """One second per value: the most predictions held at once, those whose rows waited for the model,
    and the first as a percentage of the worker's limit."""

    concurrent: List[int]
    queued: List[int]
    utilization: List[float]

    def idle(self) -> bool:
        return not any(self.concurrent) and not any(self.queued)


class LoadSampler:
    """Collects one sample a second from `admission` and `queued` (rows waiting for the model)."""

    def __init__(self, admission: Admission, queued: Callable[[], int]):
        self._admission = admission
        self._queued = queued
        self._reset()

    def _reset(self) -> None:
        self._samples = LoadSamples([], [], [])

    def sample(self) -> None:
        peak = self._admission.take_peak()
        s = self._samples
        s.concurrent.append(peak)
        s.queued.append(max(0, self._queued()))
        s.utilization.append(round(100.0 * peak / self._admission.limit, 2))

    def take(self) -> LoadSamples:
        samples = self._samples
        self._reset()
        return samples
