"""Turns a /predict request body into a 2-D float array, or a ClientError that says what is wrong."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np

from .errors import ClientError

#: Most characters of a client's value echoed back in an error message.
_ECHO_CHARS = 40


@dataclass
class PredictRequest:
    rows: np.ndarray
    #: True for {"instances": [...]}: the answer is a list, one entry per row.
    batch: bool


def _echo(value: Any) -> str:
    """A client's value as JSON, cut short: an error message never repeats a whole payload."""
    text = json.dumps(value)
    return text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + "..."


def _reject_constant(name: str) -> Any:
    raise ClientError(f"body has {name}: features must be finite numbers")


def parse_json(body: bytes) -> Any:
    if not body:
        raise ClientError("request body is empty: send JSON like {\"features\": [5.1, 3.5, 1.4, 0.2]}")
    try:
        # Integers are read as floats: every feature becomes a float anyway, and converting a
        # 400-digit integer to a Python int (then to a float) is slow and overflows.
        return json.loads(body, parse_int=float, parse_constant=_reject_constant)
    except ClientError:
        raise
    except RecursionError:
        raise ClientError('request body is nested too deeply: send {"features": [...]} or {"instances": [[...], ...]}') from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ClientError(f"request body is not valid JSON: {err}") from None


def _row(values: Any, where: str, n_features: Optional[int]) -> List[float]:
    if not isinstance(values, list):
        raise ClientError(f"{where} must be a list of numbers, got {type(values).__name__}")
    if not values:
        raise ClientError(f"{where} is empty")
    for i, v in enumerate(values):
        # JSON true/false are bools in Python, never feature values.
        if v.__class__ is not float:
            raise ClientError(f"{where}[{i}] must be a number, got {_echo(v)}")
        if not math.isfinite(v):
            raise ClientError(f"{where}[{i}] must be a finite number")
    if n_features is not None and len(values) != n_features:
        raise ClientError(f"{where} has {len(values)} values, but the model expects {n_features}")
    return values


def parse_predict_request(payload: Any, n_features: Optional[int], max_batch: int) -> PredictRequest:
    """Accepts {"features": [...]} (one row) or {"instances": [[...], ...]} (a batch)."""
    if not isinstance(payload, dict):
        raise ClientError("request body must be a JSON object with \"features\" or \"instances\"")
    if "features" in payload and "instances" in payload:
        raise ClientError("send either \"features\" (one row) or \"instances\" (a batch), not both")
    if "features" in payload:
        row = _row(payload["features"], "features", n_features)
        return PredictRequest(np.array([row], dtype=np.float64), batch=False)
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise ClientError(f"instances must be a list of rows, got {type(instances).__name__}")
        if not instances:
            raise ClientError("instances is empty: send at least one row")
        if len(instances) > max_batch:
            raise ClientError(f"instances has {len(instances)} rows; at most {max_batch} are allowed per request")
        rows = [_row(r, f"instances[{i}]", n_features) for i, r in enumerate(instances)]
        width = len(rows[0])
        for i, r in enumerate(rows):
            if len(r) != width:
                raise ClientError(f"instances is ragged: row 0 has {width} values but row {i} has {len(r)}")
        return PredictRequest(np.array(rows, dtype=np.float64), batch=True)
    raise ClientError("missing field: send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch")
