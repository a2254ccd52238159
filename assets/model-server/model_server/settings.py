"""Every setting of the server, read once from the environment.

This module is the server's side of the container contract: it is the only place that reads
environment variables, so the names below are exactly the ones the constructs may set (a test
holds the two sides together).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be from {minimum} to {maximum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


# The rules both sides of the container contract judge alike: this server, and the constructs at
# synth (lib/container-contract.ts reads the same file), so whatever synthesizes, starts.
with open(os.path.join(os.path.dirname(__file__), "contract.json"), encoding="utf-8") as _contract:
    CONTRACT = json.load(_contract)
_PATH = re.compile(CONTRACT["urlPath"]["pattern"])


def _path(env: Mapping[str, str], name: str, default: str, allow_empty: bool) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if allow_empty and raw == "/":
        return ""
    if not _PATH.match(raw):
        raise SettingsError(f"{name} must be {CONTRACT['urlPath']['means']}, got {raw!r}")
    return raw


def _name(env: Mapping[str, str], name: str, default: str) -> str:
    """A CloudWatch namespace or dimension value: 1-255 printable ASCII characters."""
    value = env.get(name, "").strip() or default
    if len(value) > 255 or not all(" " <= c <= "~" for c in value):
        raise SettingsError(f"{name} must be 1-255 printable ASCII characters, got {value[:60]!r}")
    return value


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    #: Prometheus /metrics is served on this port only, which the load balancer never targets.
    metrics_port: int
    model_dir: str
    #: Which model file to serve when the directory holds several.
    model_file: Optional[str]
    #: The deployment's name for the model (the constructs pass it); reported by /health and the logs.
    model_version: str
    #: The feature count TorchScript requests are checked against (other loaders know it).
    model_n_features: Optional[int]
    #: What to do with a pickle written by another library version: warn or refuse.
    version_mismatch: str
    #: Every route is served below this prefix ("" for none), e.g. /models/iris/predict.
    route_prefix: str
    health_path: str
    #: Whether /health also names the model file, the loader and the library versions.
    health_details: bool
    max_body_bytes: int
    #: How much of an oversized body is read and discarded so the client can read its 413.
    max_drain_bytes: int
    #: Seconds a client has to send a whole request, headers and body.
    request_timeout: float
    workers: int
    #: GPUs the task reserved: worker slot i gets GPU i % gpu_count (0: no GPU).
    gpu_count: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    batching: bool
    batch_max_rows: int
    batch_max_wait_ms: float
    #: How long a prediction waits for its worker's model to finish loading before a 503.
    load_wait_seconds: float
    #: Predictions the task works on or waits for at once, over all workers; past it, a 503 at once.
    max_concurrent_requests: int
    log_level: str
    #: Seconds between a worker's CloudWatch EMF lines (0: none).
    emf_interval: float
    #: Seconds between a worker's high-resolution load lines (EMF; off with emf_interval 0).
    load_interval: float
    #: The EMF metrics' namespace and Service dimension (the constructs pass the service's name).
    emf_namespace: str
    service_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        n_features = _int(env, "MODEL_N_FEATURES", 0, minimum=1) if env.get("MODEL_N_FEATURES", "").strip() else None
        return cls(
            host=env.get("HOST", "0.0.0.0"),
            port=_int(env, "PORT", 8080),
            metrics_port=_int(env, "METRICS_PORT", 9090),
            model_dir=env.get("MODEL_DIR", "/models"),
            model_file=env.get("MODEL_FILE") or None,
            model_version=env.get("MODEL_VERSION", "").strip() or "unversioned",
            model_n_features=n_features,
            version_mismatch=_choice(env, "MODEL_VERSION_MISMATCH", "warn", ("warn", "refuse")),
            route_prefix=_path(env, "ROUTE_PREFIX", "", allow_empty=True),
            health_path=_path(env, "HEALTH_PATH", "/health", allow_empty=False),
            health_details=_bool(env, "HEALTH_DETAILS", False),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1024 * 1024),
            max_drain_bytes=_int(env, "MAX_DRAIN_BYTES", 64 * 1024 * 1024, minimum=0),
            request_timeout=_float(env, "REQUEST_TIMEOUT", 10.0, 0.1, 3600.0),
            workers=_int(env, "WORKERS", _cpu_count()),
            gpu_count=_int(env, "GPU_COUNT", 0, minimum=0),
            timeout=_int(env, "TIMEOUT", 30),
            graceful_timeout=_int(env, "GRACEFUL_TIMEOUT", 25),
            # Longer than the ALB's 60 s idle timeout, so the ALB closes idle connections
            # first and never sends a request down one the server is closing (a 502).
            keepalive=_int(env, "KEEPALIVE", 75),
            batching=_bool(env, "BATCHING", True),
            batch_max_rows=_int(env, "BATCH_MAX_ROWS", 64),
            batch_max_wait_ms=_float(env, "BATCH_MAX_WAIT_MS", 2.0, 0.0, 100.0),
            load_wait_seconds=_float(env, "LOAD_WAIT_SECONDS", 10.0, 0.0, 3600.0),
            max_concurrent_requests=_int(env, "MAX_CONCURRENT_REQUESTS", 0, minimum=1),
            log_level=_choice(env, "LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            emf_interval=_float(env, "EMF_INTERVAL_SECONDS", 60.0, 0.0, 3600.0),
            load_interval=_float(env, "LOAD_INTERVAL_SECONDS", 10.0, 1.0, 60.0),
            emf_namespace=_name(env, "EMF_NAMESPACE", "CdkModelServing"),
            service_name=_name(env, "SERVICE_NAME", "model-server"),
        )

    def __post_init__(self) -> None:
        if self.max_concurrent_requests == 0:
            # The default: two micro-batches' worth of requests per worker (one in the model, one
            # gathering; without batching, as many waiting their turn). More would only wait.
            object.__setattr__(self, "max_concurrent_requests", self.workers * 2 * self.batch_max_rows)
        maximum = CONTRACT["maxConcurrentRequests"]["maximum"]
        if not self.workers <= self.max_concurrent_requests <= maximum:
            raise SettingsError(f"MAX_CONCURRENT_REQUESTS must be from WORKERS ({self.workers}), so that every worker admits "
                                f"one request, to {maximum}, got {self.max_concurrent_requests}")
        if self.health_path in CONTRACT["reservedRoutes"]:
            raise SettingsError(f"HEALTH_PATH must not be {self.health_path}, which the server answers as a route of its own")
        if self.metrics_port == self.port:
            raise SettingsError(f"METRICS_PORT must differ from PORT ({self.port}): /metrics is never served where clients are")

    @property
    def worker_concurrency(self) -> int:
        """Each worker's share of MAX_CONCURRENT_REQUESTS: the task never holds more than the cap."""
        return self.max_concurrent_requests // self.workers

    def route(self, path: str) -> str:
        """A route's full path below the prefix: route('/predict') is /models/iris/predict."""
        return self.route_prefix + path
