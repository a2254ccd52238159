"""Server settings, read once from the environment."""

from __future__ import annotations

import os
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


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


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


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    model_dir: str
    model_file: Optional[str]
    max_body_bytes: int
    workers: int
    threads: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    #: Micro-batching of concurrent requests within a worker.
    batching: bool
    batch_max_rows: int
    batch_max_wait_ms: float
    #: How long a prediction waits for this worker's model to finish loading before a 503.
    load_wait_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        return cls(
            host=env.get("HOST", "0.0.0.0"),
            port=_int(env, "PORT", 8080),
            model_dir=env.get("MODEL_DIR", "/models"),
            model_file=env.get("MODEL_FILE") or None,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1024 * 1024),
            workers=_int(env, "WORKERS", _cpu_count()),
            # Enough threads per worker that concurrent requests can meet in one batch.
            threads=_int(env, "THREADS", 16),
            timeout=_int(env, "TIMEOUT", 30),
            graceful_timeout=_int(env, "GRACEFUL_TIMEOUT", 25),
            # Longer than the ALB's 60 s idle timeout, so the ALB closes idle connections
            # first and never sends a request down one the server is closing (a 502).
            keepalive=_int(env, "KEEPALIVE", 75),
            batching=_bool(env, "BATCHING", True),
            batch_max_rows=_int(env, "BATCH_MAX_ROWS", 64),
            batch_max_wait_ms=_float(env, "BATCH_MAX_WAIT_MS", 2.0, 0.0, 100.0),
            load_wait_seconds=_float(env, "LOAD_WAIT_SECONDS", 10.0, 0.0, 3600.0),
        )
