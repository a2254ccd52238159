"""The HTTP API: GET /health and POST /predict, with a JSON error for every failure."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import metrics
from .model_loader import ModelInputError
from .model_state import ModelState
from .validation import ClientError, parse_json, parse_predict_request

log = logging.getLogger("model_server")

#: Most rows one {"instances": [...]} request may carry.
MAX_BATCH_ROWS = 1024


def _error(message: str, status: int) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _read_body(limit: int) -> bytes:
    """The request body, read to at most `limit` bytes: also bounds chunked bodies, which carry
    no Content-Length for the framework's own limit to check up front."""
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ClientError(f"request body is larger than the {limit}-byte limit", 413)
    return body


def create_app(state: ModelState, max_body_bytes: int, load_wait_seconds: float = 0.0) -> Flask:
    app = Flask("model_server")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        metrics.observe_request(request.method, request.path, response.status_code, time.perf_counter() - g.started)
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    @app.get("/health")
    def health():
        model = state.model
        if model is None:
            body = {"status": "error", "error": state.error} if state.error else {"status": "loading"}
            response = jsonify(body)
            response.status_code = 503
            return response
        # n_features lets a client (the CLI's smoke test) build a valid request without knowing the model.
        return jsonify({"status": "ok", "model": model.path, "loader": model.loader, "n_features": model.n_features, **model.info})

    @app.post("/predict")
    def predict():
        model = state.model or state.wait(load_wait_seconds)
        if model is None:
            return _error("the model is not loaded yet; retry when GET /health answers 200", 503)
        if request.mimetype != "application/json":
            return _error(
                f"Content-Type must be application/json, got {request.mimetype or 'none'!r}", 415
            )
        batcher = state.batcher
        if batcher:
            batcher.begin()  # the batcher may wait for this request's rows while they are parsed
        try:
            parsed = parse_predict_request(parse_json(_read_body(max_body_bytes)), model.n_features, MAX_BATCH_ROWS)
            result = state.predict(parsed.rows)
        finally:
            if batcher:
                batcher.end()
        if parsed.batch:
            body = {"predictions": result.labels}
            if result.probabilities is not None:
                body["probabilities"] = result.probabilities
        else:
            body = {"prediction": result.labels[0]}
            if result.probabilities is not None:
                body["probability"] = result.probabilities[0]
        return jsonify(body)

    @app.errorhandler(ClientError)
    def client_error(err: ClientError):
        return _error(err.message, err.status)

    @app.errorhandler(ModelInputError)
    def model_input_error(err: ModelInputError):
        return _error(str(err), 400)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        if err.code == 413:
            return _error(f"request body is larger than the {max_body_bytes}-byte limit", 413)
        return _error(err.description or err.name, err.code or 500)

    @app.errorhandler(Exception)
    def unexpected(err: Exception):
        log.exception("prediction failed")
        return _error(f"internal error: {type(err).__name__}", 500)

    return app
