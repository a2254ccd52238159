"""Prometheus metrics on /metrics: requests, latency, micro-batch sizes, time in the model, and
which model version serves.

gunicorn runs several worker processes; prometheus_client's multiprocess mode (the runner sets
PROMETHEUS_MULTIPROC_DIR before any worker starts) makes /metrics report all of them together,
whichever worker answers. Without it (one process, e.g. under a test) the default registry is used.
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

REQUESTS = Counter("model_server_requests_total", "HTTP requests answered", ["method", "path", "status"])
SHED = Counter("model_server_requests_shed_total",
               "Predictions refused at once (503) because the task was at MAX_CONCURRENT_REQUESTS")
LATENCY = Histogram(
    "model_server_request_duration_seconds",
    "Time from the request reaching the app to its response",
    ["path"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH_REQUESTS = Histogram(
    "model_server_batch_requests", "Requests served by one model call", buckets=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64),
)
BATCH_ROWS = Histogram(
    "model_server_batch_rows", "Rows in one model call", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
MODEL_SECONDS = Histogram(
    "model_server_model_duration_seconds", "Time in the model for one call (a micro-batch or a lone request)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
#: 1 for the model version (and loader) a worker serves; a deployment or a rollback changes the label.
MODEL_INFO = Gauge("model_server_model_info", "The model version this server serves", ["version", "loader"],
                   multiprocess_mode="max")

#: Label children by label values: labels() costs more than the observation itself.
_requests: Dict[Tuple[str, str, int], object] = {}
_latency: Dict[str, object] = {}


def observe_request(method: str, path_label: str, status: int, seconds: float, shed: bool = False) -> None:
    """`path_label` is a route's name or "other": never the raw path (bounded cardinality)."""
    if shed:
        SHED.inc()
    key = (method, path_label, status)
    counter = _requests.get(key)
    if counter is None:
        counter = _requests[key] = REQUESTS.labels(method, path_label, str(status))
    counter.inc()
    histogram = _latency.get(path_label)
    if histogram is None:
        histogram = _latency[path_label] = LATENCY.labels(path_label)
    histogram.observe(seconds)


def observe_batch(requests: int, rows: int) -> None:
    """A micro-batch: how many requests and rows one model call served (BATCHING=true only)."""
    BATCH_REQUESTS.observe(requests)
    BATCH_ROWS.observe(rows)


def observe_model_call(seconds: float) -> None:
    MODEL_SECONDS.observe(seconds)


def model_loaded(version: str, loader: str) -> None:
    MODEL_INFO.labels(version, loader).set(1)


def render() -> Tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
