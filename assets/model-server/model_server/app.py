"""The HTTP API as a bare ASGI app: POST /predict and GET /health below the route prefix, with a
JSON error for every failure; GET /metrics on the metrics port only, which the load balancer never
targets, so outside callers cannot reach it whatever the listener's rules.

No web framework: three routes need none, and on a small model the HTTP layer is most of each
request's cost, so every layer between the socket and the model shows up in the throughput.
Parsing, validation and the JSON answer are cheap and stay on the event loop; the model runs off
it (see batching.py).
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable, Dict, Optional, Tuple

from . import metrics
from .access_log import AccessLog
from .emf import EmfReporter
from .errors import BodyTooLarge, MethodNotAllowed, NotFound, NotReady, Overloaded, UnsupportedMediaType, status_and_message
from .http_io import ClientGone, Receive, Scope, Send, header, json_bytes, read_body, send_bytes, send_too_large
from .load import Admission
from .model_state import ModelState
from .settings import Settings
from .validation import parse_json, parse_predict_request

log = logging.getLogger("model_server")

#: Most rows one {"instances": [...]} or {"records": [...]} request may carry.
MAX_BATCH_ROWS = 1024

Handler = Callable[[Scope, Receive, Send], Awaitable[int]]


class ModelApp:
    def __init__(self, state: ModelState, settings: Settings, access_log: AccessLog, emf: Optional[EmfReporter] = None):
        self.state = state
        self.settings = settings
        self.access_log = access_log
        self.emf = emf
        # path -> (allowed method, metrics label, handler), for the serving port and the metrics port
        self.routes: Dict[str, Tuple[str, str, Handler]] = {
            settings.route("/predict"): ("POST", "/predict", self.predict),
            settings.route(settings.health_path): ("GET", "/health", self.health),
        }
        self.metrics_routes: Dict[str, Tuple[str, str, Handler]] = {"/metrics": ("GET", "/metrics", self.prometheus_metrics)}
        #: Predictions this worker works on or waits for, and the most it admits (its share of the task's cap).
        self.admission = Admission(settings.worker_concurrency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # Not served: closing before the handshake makes the server answer 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return  # lifespan is off
        started = time.perf_counter()
        path = scope["path"]
        method = scope["method"]
        on_metrics_port = scope["server"][1] == self.settings.metrics_port
        route = (self.metrics_routes if on_metrics_port else self.routes).get(path)
        label = route[1] if route else "other"
        shed = False
        try:
            if route is None:
                routes = "GET /metrics" if on_metrics_port else \
                    f"POST {self.settings.route('/predict')} or GET {self.settings.route(self.settings.health_path)}"
                raise NotFound(f"no route {path}: {routes}")
            if method != route[0]:
                raise MethodNotAllowed(f"{method} is not allowed on {path}; use {route[0]}", route[0])
            status, size = await route[2](scope, receive, send)
        except ClientGone:
            return  # nothing to answer, nobody to answer it to
        except BodyTooLarge as err:
            status, size = 413, await send_too_large(scope, receive, send, err.message, self.settings.max_drain_bytes)
        except Exception as err:  # every failure is a JSON answer
            status, message = status_and_message(err)
            if status >= 500 and not isinstance(err, (NotReady, Overloaded)):
                log.error("%s %s failed", method, path, exc_info=err)
            shed = isinstance(err, Overloaded)
            extra = [(b"allow", err.allow.encode())] if isinstance(err, MethodNotAllowed) else \
                [(b"retry-after", str(Overloaded.retry_after).encode())] if shed else []
            size = await send_bytes(send, status, json_bytes({"error": message}), extra=extra)
        seconds = time.perf_counter() - started
        metrics.observe_request(method, label, status, seconds, shed)
        if self.emf is not None and label == "/predict":
            self.emf.record_request(status, shed)
        self.access_log.write(scope.get("client"), method, path, status, size, seconds,
                              header(scope, b"user-agent"), header(scope, b"x-forwarded-for"), shed)

    async def predict(self, scope: Scope, receive: Receive, send: Send) -> Tuple[int, int]:
        # Load shedding: past this worker's share of MAX_CONCURRENT_REQUESTS a request is refused at
        # once, before its body is read, so an overloaded task answers fast instead of queueing
        # until every client times out. /health never comes here, so it is never refused.
        if not self.admission.try_admit():
            raise Overloaded(f"the server is at its limit of {self.settings.max_concurrent_requests} concurrent requests; "
                             f"retry after {Overloaded.retry_after} s")
        try:
            return await self._predict(scope, receive, send)
        finally:
            self.admission.release()

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> Tuple[int, int]:
        state = self.state
        model = state.model or await state.wait(self.settings.load_wait_seconds)
        if model is None:
            health = self.settings.route(self.settings.health_path)
            raise NotReady(f"the model is not loaded yet; retry when GET {health} answers 200")
        content_type = header(scope, b"content-type")
        mimetype = content_type.split(b";", 1)[0].strip().lower() if content_type else b""
        if mimetype != b"application/json":
            raise UnsupportedMediaType(f"Content-Type must be application/json, got {mimetype.decode('latin-1')!r}" if mimetype
                                       else "Content-Type must be application/json, got none")
        predictor = state.predictor
        raw_body = await read_body(scope, receive, self.settings.max_body_bytes)
        # Only now may the batcher wait for this request's rows: a body still arriving (or one that
        # stalls) would hold every batch to the full window.
        predictor.begin()
        try:
            parsed = parse_predict_request(parse_json(raw_body), model.n_features, MAX_BATCH_ROWS, model.feature_names)
            result = await predictor.submit(parsed.rows)
        finally:
            predictor.end()
        if parsed.batch:
            body = {"predictions": result.labels}
            if result.probabilities is not None:
                body["probabilities"] = result.probabilities
        else:
            body = {"prediction": result.labels[0]}
            if result.probabilities is not None:
                body["probability"] = result.probabilities[0]
        return 200, await send_bytes(send, 200, json_bytes(body))

    async def health(self, scope: Scope, receive: Receive, send: Send) -> Tuple[int, int]:
        model = self.state.model
        if model is None:
            body = {"status": "error", "error": self.state.error} if self.state.error else {"status": "loading"}
            return 503, await send_bytes(send, 503, json_bytes(body))
        # n_features lets a client (the CLI's smoke test) build a valid request without knowing the model.
        body = {"status": "ok", "model_version": self.settings.model_version, "n_features": model.n_features}
        if model.feature_names is not None:
            body["feature_names"] = model.feature_names
        if self.settings.health_details:
            body.update(model=model.path, loader=model.loader, **model.info, **self.state.worker_info)
        return 200, await send_bytes(send, 200, json_bytes(body))

    async def prometheus_metrics(self, scope: Scope, receive: Receive, send: Send) -> Tuple[int, int]:
        text, content_type = metrics.render()
        return 200, await send_bytes(send, 200, text, content_type=content_type.encode())
