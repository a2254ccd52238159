"""Finds the model file in the model directory and loads it behind one small interface."""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

log = logging.getLogger("model_server")


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


def _predicts_argmax_of_proba(model: Any) -> bool:
    """Whether scikit-learn's own predict() for `model` is classes_[argmax(predict_proba())]."""
    try:
        from sklearn.ensemble._forest import ForestClassifier
        from sklearn.tree import DecisionTreeClassifier
    except ImportError:  # pragma: no cover - a scikit-learn without these modules
        return False
    single_output = getattr(model, "n_outputs_", 1) == 1
    return single_output and isinstance(model, (ForestClassifier, DecisionTreeClassifier))


class ModelVersionError(RuntimeError):
    """The pickle was written by another version of its library, and MODEL_VERSION_MISMATCH=refuse."""


def _load_pickle_checking_versions(path: str) -> Tuple[Any, List[str]]:
    """joblib.load, returning the library-version warnings the unpickling raised (scikit-learn
    warns when an estimator was pickled by another version of it)."""
    import joblib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = joblib.load(path)
    mismatches = []
    for w in caught:
        text = str(w.message)
        if type(w.message).__name__ == "InconsistentVersionWarning" or "Trying to unpickle estimator" in text:
            mismatches.append(text.split("\n")[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, mismatches


def _library_of(model: Any) -> Dict[str, str]:
    """The library the model's class comes from, with its version: {"xgboost": "1.7.4"}."""
    root = type(model).__module__.split(".")[0]
    try:
        version = getattr(__import__(root), "__version__", "unknown")
    except ImportError:  # pragma: no cover - the class was just unpickled from it
        version = "unknown"
    return {root: str(version)}


def _load_sklearn(path: str) -> LoadedModel:
    import joblib  # imported here: only this loader needs it

    model, mismatches = _load_pickle_checking_versions(path)
    if mismatches:
        detail = "; ".join(sorted(set(mismatches)))
        if os.environ.get("MODEL_VERSION_MISMATCH", "warn").strip().lower() == "refuse":
            raise ModelVersionError(
                f"{path} was pickled with another library version ({detail}); retrain or re-export it with the "
                "server's versions, or set MODEL_VERSION_MISMATCH=warn to serve it anyway"
            )
        log.warning("VERSION MISMATCH: %s: %s; predictions may differ or fail. Retrain with the server's versions, "
                    "or set MODEL_VERSION_MISMATCH=refuse to refuse such models.", path, detail)
    if not hasattr(model, "predict"):
        raise TypeError(f"{path} holds a {type(model).__name__}, which has no predict() method")
    has_proba = hasattr(model, "predict_proba")

    if _predicts_argmax_of_proba(model):
        # A forest's or tree's predict() is the arg-max of predict_proba(), which it computes
        # again: derive the label from the one set of probabilities (the same answer, one
        # traversal of the trees instead of two).
        classes = model.classes_

        def predict(rows: np.ndarray) -> Prediction:
            proba = model.predict_proba(rows)
            return Prediction(classes.take(np.argmax(proba, axis=1)).tolist(), proba.tolist())
    else:
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
        info={
            "type": type(model).__name__,
            "sklearn": sklearn.__version__,
            "joblib": joblib.__version__,
            **_library_of(model),
            **({"version_mismatch": "; ".join(sorted(set(mismatches)))} if mismatches else {}),
        },
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
