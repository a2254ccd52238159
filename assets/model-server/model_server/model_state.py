"""Readiness as explicit state: the model loads in the background, /health answers 503 until it
is ready, and predictions go to whatever runs the model off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Callable, Dict, Optional, Union

from .batching import MicroBatcher, SerialPredictor
from .loaders import load_model
from .prediction import LoadedModel
from .settings import Settings
from .start_failure import report_start_failure

log = logging.getLogger("model_server")

Predictor = Union[MicroBatcher, SerialPredictor]


class ModelState:
    """Holds the model once loaded. `on_failure` runs when loading fails (the worker exits so
    the container fails fast instead of serving 503 forever); `on_loaded` (model, seconds) once it
    has loaded."""

    def __init__(
        self,
        path: str,
        settings: Settings,
        make_predictor: Callable[[LoadedModel], Predictor],
        on_failure: Optional[Callable[[BaseException], None]] = None,
        on_loaded: Optional[Callable[[LoadedModel, float], None]] = None,
        worker_info: Optional[Dict[str, object]] = None,
    ):
        self.path = path
        #: Which worker this is (its slot and GPU): shown by /health with HEALTH_DETAILS=true.
        self.worker_info = worker_info or {}
        self.settings = settings
        self.model: Optional[LoadedModel] = None
        self.predictor: Optional[Predictor] = None
        self.error: Optional[str] = None
        self.load_seconds: Optional[float] = None
        self._make_predictor = make_predictor
        self._on_failure = on_failure
        self._on_loaded = on_loaded
        self._settled = threading.Event()

    async def wait(self, timeout: float) -> Optional[LoadedModel]:
        """The model, waiting up to `timeout` seconds for it to load. Another worker of the same
        server may already be healthy while this one is still loading: its requests wait here
        rather than fail. (Rare, so a thread from the loop's default pool does the waiting.)"""
        if self.model is None and timeout > 0:
            await asyncio.get_running_loop().run_in_executor(None, self._settled.wait, timeout)
        return self.model

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="model-loader", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        started = time.monotonic()
        try:
            model = load_model(self.path, self.settings)
        except BaseException as err:  # any failure to load is fatal for serving
            self.error = f"{type(err).__name__}: {err}"
            log.error("model failed to load from %s: %s", self.path, self.error)
            report_start_failure(f"model failed to load from {self.path}: {self.error}")
            self._settled.set()
            if self._on_failure:
                self._on_failure(err)
            return
        self.predictor = self._make_predictor(model)
        self.load_seconds = time.monotonic() - started
        self.model = model
        self._settled.set()
        details = " ".join(f"{k}={v}" for k, v in model.info.items())
        log.info(
            "model loaded from %s in %.2f s: version=%s loader=%s features=%s batching=%s %s",
            model.path, self.load_seconds, self.settings.model_version, model.loader, model.n_features,
            "on" if isinstance(self.predictor, MicroBatcher) else "off", details,
        )
        if self._on_loaded:
            self._on_loaded(model, self.load_seconds)
