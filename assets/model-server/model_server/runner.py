"""Runs the app under gunicorn (never Flask's development server)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from gunicorn.app.base import BaseApplication

from .batching import MicroBatcher
from .model_state import ModelState
from .settings import Settings

log = logging.getLogger("model_server")

#: gunicorn's arbiter stops the whole server when a worker exits with this code.
_WORKER_BOOT_ERROR = 3


def _exit_worker(_err: BaseException) -> None:
    logging.shutdown()
    os._exit(_WORKER_BOOT_ERROR)


class ModelServer(BaseApplication):
    """Each worker loads the model itself, in the background, after it starts listening: /health
    answers 503 until the model is ready, and a model that fails to load stops the server."""

    def __init__(self, settings: Settings, model_path: str):
        self.settings = settings
        self.model_path = model_path
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": "model_server.worker.DeadlineThreadWorker",
            "threads": s.threads,
            "timeout": s.timeout,
            "graceful_timeout": s.graceful_timeout,
            "keepalive": s.keepalive,
            "accesslog": "-",
            "logger_class": "model_server.access_log.JsonAccessLogger",
            "child_exit": _child_exit,
            "errorlog": "-",
            "loglevel": os.environ.get("LOG_LEVEL", "info").lower(),
            "proc_name": "model-server",
            # Requests are read whole by the gthread worker before they reach a thread.
            "limit_request_line": 8190,
            "limit_request_fields": 100,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        # Imported in the worker: PROMETHEUS_MULTIPROC_DIR is set by then (see run()).
        from . import metrics
        from .app import create_app

        s = self.settings
        make_batcher = None
        if s.batching:
            def make_batcher(model):
                return MicroBatcher(
                    model.predict, max_rows=s.batch_max_rows, max_wait=s.batch_max_wait_ms / 1000,
                    on_batch=metrics.observe_batch,
                )
        state = ModelState(self.model_path, on_failure=_exit_worker, make_batcher=make_batcher)
        state.load_in_background()
        return create_app(state, s.max_body_bytes, s.load_wait_seconds)


def _child_exit(_server, worker) -> None:
    # Not through .metrics: importing it would create metric files for the master itself.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def run(settings: Settings, model_path: str) -> None:
    """Runs the server until it is stopped. The workers share a fresh metrics directory."""
    owned_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        owned_dir = tempfile.mkdtemp(prefix="model-server-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = owned_dir
    try:
        ModelServer(settings, model_path).run()
    finally:
        if owned_dir:
            shutil.rmtree(owned_dir, ignore_errors=True)


def configure_logging() -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )
