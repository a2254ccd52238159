"""Runs the app under gunicorn, the process manager: one event-loop worker per vCPU (or per GPU)."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import sys
import tempfile
import time

from gunicorn.app.base import BaseApplication

from .settings import Settings
from .worker_slots import free_slot

log = logging.getLogger("model_server")

#: gunicorn's arbiter stops the whole server when a worker exits with this code.
_WORKER_BOOT_ERROR = 3


def _exit_worker(_err: BaseException) -> None:
    logging.shutdown()
    os._exit(_WORKER_BOOT_ERROR)


def _pre_fork(arbiter, worker) -> None:
    # In the master, before the fork: the new worker takes the lowest slot no live worker holds.
    worker.slot = free_slot(getattr(w, "slot", None) for w in arbiter.WORKERS.values())


def _child_exit(_arbiter, worker) -> None:
    # Not through .metrics: importing it would create metric files for the master itself.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class ModelServer(BaseApplication):
    """Each worker loads the model itself, in the background, once it is forked: /health answers
    503 until the model is ready, and a model that fails to load stops the server."""

    def __init__(self, settings: Settings, model_path: str):
        self.settings = settings
        self.model_path = model_path
        #: Set in each worker before load() (see worker.py).
        self.worker_info: dict = {}
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": [f"{s.host}:{s.port}", f"{s.host}:{s.metrics_port}"],
            "workers": s.workers,
            "worker_class": "model_server.worker.ModelServerWorker",
            # A worker that stops answering gunicorn's heartbeat for this long is replaced.
            "timeout": s.timeout,
            # SIGTERM to SIGKILL for in-flight requests (the constructs keep it inside ECS's stopTimeout).
            "graceful_timeout": s.graceful_timeout,
            "keepalive": s.keepalive,
            "accesslog": None,  # the app writes its own JSON access log
            "errorlog": "-",
            "loglevel": s.log_level,
            "proc_name": "model-server",
            "pre_fork": _pre_fork,
            "child_exit": _child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        # Imported in the worker: PROMETHEUS_MULTIPROC_DIR is set by then (see run()).
        from . import metrics
        from .access_log import AccessLog
        from .app import ModelApp
        from .batching import MicroBatcher, SerialPredictor
        from .emf import EmfReporter
        from .line_writer import LineWriter
        from . import startup
        from .load import LoadSampler
        from .model_state import ModelState

        s = self.settings
        stdout = LineWriter()
        emf = None
        if s.emf_interval > 0:
            emf = EmfReporter(s.emf_namespace, s.service_name, s.model_version, s.emf_interval, stdout)
            atexit.register(emf.stop)  # the last interval's line, when the worker stops

        def on_call(requests: int, rows: int, seconds: float) -> None:
            metrics.observe_model_call(seconds)
            if emf is not None:
                emf.record_batch(rows, seconds)

        def on_batch(requests: int, rows: int, seconds: float) -> None:
            metrics.observe_batch(requests, rows)
            on_call(requests, rows, seconds)

        def on_loaded(model, seconds: float) -> None:
            metrics.model_loaded(s.model_version, model.loader)
            if emf is not None:
                emf.model_loaded(seconds)
            if self.worker_info.get("slot", 0) == 0:  # one report per task: its first worker's
                ready = time.time()
                record = startup.report(dict(os.environ), s.model_dir, ready - seconds, ready)
                stdout.write(json.dumps(record, separators=(",", ":")))
                if emf is not None:
                    emf.startup({name: record[key] for key, name in startup.EMF_NAMES.items() if key in record})

        def make_predictor(model):
            if not s.batching:
                return SerialPredictor(model.predict, on_batch=on_call)
            return MicroBatcher(model.predict, max_rows=s.batch_max_rows, max_wait=s.batch_max_wait_ms / 1000,
                                on_batch=on_batch)

        state = ModelState(self.model_path, s, make_predictor, on_failure=_exit_worker, on_loaded=on_loaded,
                           worker_info=self.worker_info)
        state.load_in_background()
        app = ModelApp(state, s, AccessLog(s.model_version, stdout), emf)
        if emf is not None:
            emf.start(LoadSampler(app.admission, lambda: state.predictor.queued() if state.predictor else 0), s.load_interval,
                      self.worker_info.get("slot"))
        return app


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


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=level.upper(),
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )
