"""Model-level metrics for CloudWatch, without an agent: CloudWatch Embedded Metric Format lines.

The awslogs driver sends the container's stdout to CloudWatch Logs, which turns every line that
is an EMF document into metrics. Each worker aggregates what it saw and writes one line per
EMF_INTERVAL_SECONDS (and one when its model has loaded), so the rate is bounded whatever the
traffic: at most workers / interval lines, each a few KiB.

Metrics (namespace EMF_NAMESPACE, dimensions [Service] and [Service, ModelVersion]):
- ModelLatency (Milliseconds): time in the model for one call (a micro-batch or a lone request);
- RowsPerBatch (Count): rows in one model call;
- Requests (Count): prediction requests answered; RequestsRejected (Count): those answered 4xx or 5xx;
  RequestsShed (Count): those refused at once (503) at MAX_CONCURRENT_REQUESTS;
- ModelLoadSeconds (Seconds): how long the worker took to load the model;
- ImagePullSeconds, ModelFetchSeconds, ServerStartSeconds, TimeToReadySeconds (Seconds): the task's
  cold start, stage by stage (startup.py), once per task, those that are known.

High-resolution metrics (StorageResolution 1, dimension [Service] only), one line per worker and
LOAD_INTERVAL_SECONDS (10) while it held any prediction, one value per second, for scaling within
seconds (see load.py):
- ConcurrentRequests (Count): the most predictions the worker held at once (working on or waiting for);
- QueuedRequests (Count): of those, the ones whose rows waited for the model;
- ConcurrencyUtilization (Percent): ConcurrentRequests as a share of the worker's part of
  MAX_CONCURRENT_REQUESTS. Its Average over the service is the fleet's share of its admission cap.

An EMF metric carries at most 100 values. Up to 100 samples an interval are written as they are;
beyond that, 100 evenly spaced quantiles of the interval's samples (a bounded reservoir) are, so
percentiles stay close while Sum and SampleCount describe the quantiles: Requests gives the true
count of requests.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Callable, Dict, List, Optional

from .line_writer import LineWriter
from .load import LoadSampler, LoadSamples

#: EMF's limit on values in one metric.
MAX_VALUES = 100
#: Samples kept per interval and metric to draw the quantiles from (reservoir sampling past it).
RESERVOIR = 4096


class _Samples:
    """A bounded, uniform sample of an interval's values (Algorithm R)."""

    __slots__ = ("values", "seen", "_random")

    def __init__(self, rng: random.Random):
        self.values: List[float] = []
        self.seen = 0
        self._random = rng

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < RESERVOIR:
            self.values.append(value)
        else:
            slot = self._random.randrange(self.seen)
            if slot < RESERVOIR:
                self.values[slot] = value

    def emf_values(self) -> List[float]:
        if len(self.values) <= MAX_VALUES:
            return [round(v, 4) for v in self.values]
        ordered = sorted(self.values)
        last = len(ordered) - 1
        return [round(ordered[round(i * last / (MAX_VALUES - 1))], 4) for i in range(MAX_VALUES)]


class EmfReporter:
    """One per worker. record_* may be called from any thread; lines go out through `writer`."""

    def __init__(self, namespace: str, service: str, model_version: str, interval: float,
                 writer: LineWriter, clock: Callable[[], float] = time.time):
        self.namespace = namespace
        self.service = service
        self.model_version = model_version
        self.interval = interval
        self._writer = writer
        self._clock = clock
        self._lock = threading.Lock()
        self._random = random.Random(0)
        self._reset()
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._load: Optional[LoadSampler] = None
        self._load_interval = 10.0
        self._load_thread: Optional[threading.Thread] = None
        self._worker: Optional[int] = None

    def _reset(self) -> None:
        self._latency = _Samples(self._random)
        self._rows = _Samples(self._random)
        self._requests = 0
        self._rejected = 0
        self._shed = 0

    def record_batch(self, rows: int, seconds: float) -> None:
        with self._lock:
            self._latency.add(seconds * 1000.0)
            self._rows.add(float(rows))

    def record_request(self, status: int, shed: bool = False) -> None:
        with self._lock:
            self._requests += 1
            if status >= 400:
                self._rejected += 1
            if shed:
                self._shed += 1

    def model_loaded(self, seconds: float) -> None:
        self._emit({"ModelLoadSeconds": ("Seconds", round(seconds, 3))})

    def startup(self, seconds: Dict[str, float]) -> None:
        """The task's cold-start stages (startup.py), once, when its first worker is ready."""
        if seconds:
            self._emit({name: ("Seconds", value) for name, value in seconds.items()})

    def flush(self) -> bool:
        """Writes the interval's line, if anything happened in it. True when a line was written."""
        with self._lock:
            latency, rows, requests, rejected, shed = self._latency, self._rows, self._requests, self._rejected, self._shed
            self._reset()
        if requests == 0 and latency.seen == 0:
            return False
        values: Dict[str, tuple] = {
            "Requests": ("Count", requests), "RequestsRejected": ("Count", rejected), "RequestsShed": ("Count", shed),
        }
        if latency.seen:
            values["ModelLatency"] = ("Milliseconds", latency.emf_values())
            values["RowsPerBatch"] = ("Count", rows.emf_values())
        self._emit(values)
        return True

    def flush_load(self) -> bool:
        """Writes the high-resolution load line of the samples taken since the last, unless all were 0."""
        if self._load is None:
            return False
        samples = self._load.take()
        if samples.idle():
            return False
        self._emit_load(samples)
        return True

    def start(self, load: Optional[LoadSampler] = None, load_interval: float = 10.0, worker: Optional[int] = None) -> None:
        """Flushes every `interval` seconds on a daemon thread, and once more at stop(); with `load`,
        samples it every second and writes its line every `load_interval` seconds on another (with
        the worker's slot, a log field, not a dimension)."""
        self._worker = worker
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="emf", daemon=True)
            self._thread.start()
        if load is not None and self._load_thread is None:
            self._load, self._load_interval = load, load_interval
            self._load_thread = threading.Thread(target=self._run_load, name="emf-load", daemon=True)
            self._load_thread.start()

    def stop(self) -> None:
        self._stopped.set()
        for thread in (self._thread, self._load_thread):
            if thread is not None:
                thread.join(timeout=5)
        self.flush()
        self.flush_load()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.flush()
            except Exception:  # metrics must never take the worker down
                pass

    def _run_load(self) -> None:
        taken = 0
        while not self._stopped.wait(1.0):
            try:
                self._load.sample()  # type: ignore[union-attr]
                taken += 1
                if taken >= self._load_interval:
                    taken = 0
                    self.flush_load()
            except Exception:  # metrics must never take the worker down
                pass

    def _emit_load(self, samples: LoadSamples) -> None:
        self._emit({
            "ConcurrentRequests": ("Count", samples.concurrent),
            "QueuedRequests": ("Count", samples.queued),
            "ConcurrencyUtilization": ("Percent", samples.utilization),
        }, high_resolution=True)

    def _emit(self, values: Dict[str, tuple], high_resolution: bool = False) -> None:
        """One EMF document. A high-resolution one (1-second storage) has the Service dimension only,
        to keep the count of high-resolution series down, and carries the worker's slot as a field."""
        metric = {"StorageResolution": 1} if high_resolution else {}
        if high_resolution:
            fields = {"Worker": self._worker} if self._worker is not None else {}
        else:
            fields = {"ModelVersion": self.model_version}
        document = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Service"]] if high_resolution else [["Service"], ["Service", "ModelVersion"]],
                    "Metrics": [{"Name": name, "Unit": unit, **metric} for name, (unit, _) in values.items()],
                }],
            },
            "Service": self.service,
            **fields,
            **{name: value for name, (_, value) in values.items()},
        }
        self._writer.write(json.dumps(document, separators=(",", ":")))
