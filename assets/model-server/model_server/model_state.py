"""Loads the model in the background so /health can answer 503 until it is ready."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

import numpy as np

from .batching import MicroBatcher
from .model_loader import LoadedModel, Prediction, load_model

log = logging.getLogger("model_server")


class ModelState:
    """Holds the model once loaded. `on_failure` runs when loading fails (the gunicorn worker
    exits so the container fails fast instead of serving 503 forever)."""

    def __init__(
        self,
        path: str,
        on_failure: Optional[Callable[[BaseException], None]] = None,
        make_batcher: Optional[Callable[[LoadedModel], MicroBatcher]] = None,
    ):
        self.path = path
        self.model: Optional[LoadedModel] = None
        self.batcher: Optional[MicroBatcher] = None
        self.error: Optional[str] = None
        self._on_failure = on_failure
        self._make_batcher = make_batcher
        self._settled = threading.Event()

    def wait(self, timeout: float) -> Optional[LoadedModel]:
        """The model, waiting up to `timeout` seconds for it to load. Another worker of the same
        server may already be healthy while this one is still loading: its requests wait here
        rather than fail."""
        self._settled.wait(timeout)
        return self.model

    def predict(self, rows: np.ndarray) -> Prediction:
        """The loaded model's prediction, through the micro-batcher when there is one."""
        assert self.model is not None
        return self.batcher.predict(rows) if self.batcher else self.model.predict(rows)

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="model-loader", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        started = time.monotonic()
        try:
            model = load_model(self.path)
        except BaseException as err:  # noqa: BLE001 - any failure to load is fatal for serving
            self.error = f"{type(err).__name__}: {err}"
            log.error("model failed to load from %s: %s", self.path, self.error)
            self._settled.set()
            if self._on_failure:
                self._on_failure(err)
            return
        if self._make_batcher:
            self.batcher = self._make_batcher(model)
        self.model = model
        self._settled.set()
        details = " ".join(f"{k}={v}" for k, v in model.info.items())
        log.info(
            "model loaded from %s in %.2f s: loader=%s features=%s batching=%s %s",
            model.path, time.monotonic() - started, model.loader, model.n_features,
            "on" if self.batcher else "off", details,
        )
