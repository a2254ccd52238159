"""Finds the model file in the model directory and loads it behind one small interface."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np


class ModelNotFoundError(FileNotFoundError):
    """No usable model file, or more than one and no MODEL_FILE to choose."""


def find_model_file(model_dir: str, model_file: Optional[str] = None) -> str:
    """The model to serve: MODEL_FILE (relative to the model directory, or absolute), or the one
    model file found anywhere below the directory. Hidden files and directories are ignored."""
    if model_file:
        path = model_file if os.path.isabs(model_file) else os.path.join(model_dir, model_file)
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"MODEL_FILE {path} does not exist or is not a file")
        return path
    if not os.path.isdir(model_dir):
        raise ModelNotFoundError(f"MODEL_DIR {model_dir} does not exist or is not a directory")
    found: List[str] = []
    for root, dirs, files in os.walk(model_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(root, f) for f in sorted(files) if not f.startswith(".") and f.endswith(MODEL_SUFFIXES)
        )
    if not found:
        raise ModelNotFoundError(
            f"no model file ({', '.join(MODEL_SUFFIXES)}) found in {model_dir}"
        )
    if len(found) > 1:
        raise ModelNotFoundError(
            f"{len(found)} model files in {model_dir} ({', '.join(os.path.relpath(f, model_dir) for f in found)}): "
            "set MODEL_FILE to the one to serve"
        )
    return found[0]


@dataclass
class Prediction:
    labels: List[Any]
    probabilities: Optional[List[List[float]]]


@dataclass
class LoadedModel:
    """A loaded model and what the server needs to know about it."""

    path: str
    loader: str
    predict: Callable[[np.ndarray], Prediction]
    n_features: Optional[int]
    info: Dict[str, str] = field(default_factory=dict)


def _load_sklearn(path: str) -> LoadedModel:
    import joblib  # imported here: only this loader needs it

    model = joblib.load(path)
    if not hasattr(model, "predict"):
        raise TypeError(f"{path} holds a {type(model).__name__}, which has no predict() method")
    has_proba = hasattr(model, "predict_proba")

    def predict(rows: np.ndarray) -> Prediction:
        labels = model.predict(rows).tolist()
        probabilities = model.predict_proba(rows).tolist() if has_proba else None
        return Prediction(labels, probabilities)

    n_features = getattr(model, "n_features_in_", None)
    import sklearn

    return LoadedModel(
        path=path,
        loader="joblib",
        predict=predict,
        n_features=int(n_features) if n_features is not None else None,
        info={"type": type(model).__name__, "sklearn": sklearn.__version__, "joblib": joblib.__version__},
    )


#: The loader for each model file suffix.
_LOADERS: Dict[str, Callable[[str], LoadedModel]] = {
    ".joblib": _load_sklearn,
    ".pkl": _load_sklearn,
    ".pickle": _load_sklearn,
}
#: File suffixes the server can load.
MODEL_SUFFIXES = tuple(_LOADERS)


def load_model(path: str) -> LoadedModel:
    for suffix, loader in _LOADERS.items():
        if path.endswith(suffix):
            return loader(path)
    raise ModelNotFoundError(f"{path}: unsupported model format (expected one of {', '.join(MODEL_SUFFIXES)})")
