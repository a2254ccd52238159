"""Turns a /predict request body into a 2-D array of rows, or a ClientError that says what is wrong.

Rows come positionally ({"features": [...]}, {"instances": [[...], ...]}: floats in the order the
model was trained on) or by column name ({"records": [{"age": 41, "city": "Lyon"}, ...]}, for a
model trained on a DataFrame, which knows its columns' names: numbers, strings and null, as an
object array in the model's column order)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

from .errors import ClientError

#: Most characters of a client's value echoed back in an error message.
_ECHO_CHARS = 40


@dataclass
class PredictRequest:
    rows: np.ndarray
    #: True for {"instances": [...]} and {"records": [...]}: the answer is a list, one entry per row.
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


def _record_row(record: Any, where: str, columns: Sequence[str], known: frozenset) -> List[Any]:
    if not isinstance(record, dict):
        raise ClientError(f"{where} must be an object of column names and values, got {type(record).__name__}")
    missing = [c for c in columns if c not in record]
    if missing:
        raise ClientError(f"{where} is missing column{'s' if len(missing) > 1 else ''} {_echo(missing)}")
    extra = [k for k in record if k not in known]
    if extra:
        raise ClientError(f"{where} has column{'s' if len(extra) > 1 else ''} {_echo(extra)}, which the model was not trained on "
                          f"(its columns: {_echo(list(columns))})")
    row = []
    for column in columns:
        v = record[column]
        # Numbers (ints are read as floats), strings and null (a missing value); never true/false,
        # lists or objects, which no DataFrame column of a trained model holds.
        if v is not None and v.__class__ is not float and v.__class__ is not str:
            raise ClientError(f"{where}[{_echo(column)}] must be a number, a string or null, got {_echo(v)}")
        row.append(v)
    return row


def _records(records: Any, feature_names: Optional[Sequence[str]], max_batch: int) -> np.ndarray:
    if feature_names is None:
        raise ClientError("this model was trained without column names, so it takes rows by position: "
                          "send {\"features\": [...]} or {\"instances\": [[...], ...]}")
    if not isinstance(records, list):
        raise ClientError(f"records must be a list of objects, got {type(records).__name__}")
    if not records:
        raise ClientError("records is empty: send at least one record")
    if len(records) > max_batch:
        raise ClientError(f"records has {len(records)} records; at most {max_batch} are allowed per request")
    known = frozenset(feature_names)
    rows = np.empty((len(records), len(feature_names)), dtype=object)
    for i, record in enumerate(records):
        rows[i, :] = _record_row(record, f"records[{i}]", feature_names, known)
    return rows


_FORMS = ("features", "instances", "records")


def parse_predict_request(payload: Any, n_features: Optional[int], max_batch: int,
                          feature_names: Optional[Sequence[str]] = None) -> PredictRequest:
    """Accepts {"features": [...]} (one row), {"instances": [[...], ...]} (a batch) or
    {"records": [{...}, ...]} (a batch by column name, for a model that knows its columns)."""
    if not isinstance(payload, dict):
        raise ClientError("request body must be a JSON object with \"features\", \"instances\" or \"records\"")
    forms = [f for f in _FORMS if f in payload]
    if len(forms) > 1:
        raise ClientError(f"send one of \"features\" (one row), \"instances\" (a batch) or \"records\" (a batch by column name), "
                          f"not {' and '.join(forms)}")
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
    if "records" in payload:
        return PredictRequest(_records(payload["records"], feature_names, max_batch), batch=True)
    raise ClientError("missing field: send {\"features\": [...]} for one row, {\"instances\": [[...], ...]} for a batch, "
                      "or {\"records\": [{...}, ...]} by column name")
