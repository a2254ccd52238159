"""Loads the model in the background so /health can answer 503 until it is ready."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from .model_loader import LoadedModel, load_model

log = logging.getLogger("model_server")


class ModelState:
    """Holds the model once loaded. `on_failure` runs when loading fails (the gunicorn worker
    exits so the container fails fast instead of serving 503 forever)."""

    def __init__(self, path: str, on_failure: Optional[Callable[[BaseException], None]] = None):
        self.path = path
        self.model: Optional[LoadedModel] = None
        self.error: Optional[str] = None
        self._on_failure = on_failure

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
            if self._on_failure:
                self._on_failure(err)
            return
        self.model = model
        details = " ".join(f"{k}={v}" for k, v in model.info.items())
        log.info(
            "model loaded from %s in %.2f s: loader=%s features=%s %s",
            model.path, time.monotonic() - started, model.loader, model.n_features, details,
        )
