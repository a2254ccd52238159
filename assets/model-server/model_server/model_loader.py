"""Finds the model file in the model directory and loads it behind one small interface."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np


class ModelNotFoundError(FileNotFoundError):
    """No usable model file, or more than one and no MODEL_FILE to choose."""


class ModelInputError(ValueError):
    """The model could not take a request's (already validated) rows: a client error."""


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


def _labels_beside(path: str) -> Optional[List[Any]]:
    """Class labels from a `labels.json` (a JSON list) beside the model, if there is one."""
    labels_file = os.path.join(os.path.dirname(path), "labels.json")
    if not os.path.isfile(labels_file):
        return None
    with open(labels_file, encoding="utf-8") as f:
        labels = json.load(f)
    if not isinstance(labels, list) or not labels:
        raise ValueError(f"{labels_file} must hold a non-empty JSON list of class labels")
    return labels


def _load_torchscript(path: str) -> LoadedModel:
    """A TorchScript module: on the GPU when one is visible, else on the CPU. Its output is read
    as one value per row (regression) or one score per class (classification: the prediction is
    the arg-max, mapped through labels.json when present, and the probabilities its softmax)."""
    import torch

    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    module = torch.jit.load(path, map_location=device)
    module.eval()
    labels = _labels_beside(path)

    def predict(rows: np.ndarray) -> Prediction:
        inputs = torch.as_tensor(rows, dtype=torch.float32, device=device)
        try:
            with torch.inference_mode():
                output = module(inputs)
        except RuntimeError as err:
            # With validated numeric rows, a failing forward pass means the input's shape is wrong.
            raise ModelInputError(f"the model rejected the input: {str(err).splitlines()[0]}") from None
        output = output.detach().float()
        if output.dim() == 1 or (output.dim() == 2 and output.shape[1] == 1):
            return Prediction(output.reshape(-1).cpu().tolist(), None)
        if output.dim() != 2:
            raise TypeError(f"the model returned a tensor of shape {tuple(output.shape)}; expected (rows,) or (rows, classes)")
        classes = output.argmax(dim=1).cpu().tolist()
        if labels is not None:
            if output.shape[1] != len(labels):
                raise TypeError(f"the model scores {output.shape[1]} classes but labels.json lists {len(labels)}")
            classes = [labels[i] for i in classes]
        return Prediction(classes, torch.softmax(output, dim=1).cpu().tolist())

    info = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = str(torch.version.cuda)
    n_features = os.environ.get("MODEL_N_FEATURES")
    return LoadedModel(
        path=path,
        loader="torchscript",
        predict=predict,
        n_features=int(n_features) if n_features else None,
        info=info,
    )


#: The loader for each model file suffix.
_LOADERS: Dict[str, Callable[[str], LoadedModel]] = {
    ".joblib": _load_sklearn,
    ".pkl": _load_sklearn,
    ".pickle": _load_sklearn,
    ".pt": _load_torchscript,
    ".torchscript": _load_torchscript,
}
#: File suffixes the server can load.
MODEL_SUFFIXES = tuple(_LOADERS)


def load_model(path: str) -> LoadedModel:
    for suffix, loader in _LOADERS.items():
        if path.endswith(suffix):
            return loader(path)
    raise ModelNotFoundError(f"{path}: unsupported model format (expected one of {', '.join(MODEL_SUFFIXES)})")
