"""joblib/pickle models: scikit-learn estimators and pipelines, and libraries with their API
(XGBoost's XGBClassifier, for one, when that library is installed in the image)."""

from __future__ import annotations

import logging
import traceback
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..prediction import LoadedModel, ModelInputError, Prediction
from ..settings import Settings
from . import register

log = logging.getLogger("model_server")


class ModelVersionError(RuntimeError):
    """The pickle was written by another version of its library, and MODEL_VERSION_MISMATCH=refuse."""


def _predicts_argmax_of_proba(model: Any) -> bool:
    """Whether scikit-learn's own predict() for `model` is classes_[argmax(predict_proba())]."""
    from sklearn.ensemble._forest import ForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    single_output = getattr(model, "n_outputs_", 1) == 1
    return single_output and isinstance(model, (ForestClassifier, DecisionTreeClassifier))


def _direct_forest_proba(model: Any) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """A forest classifier's predict_proba without joblib's per-tree dispatch, which is most of
    a small call's cost (100 trees: about 4 ms for one row through scikit-learn, under 1 ms here;
    measured on the 100-tree iris forest of scripts/iris_models.py with time.perf_counter). It does scikit-learn's own
    arithmetic, tree by tree in the same order, so it is used only if it reproduces
    predict_proba bit for bit on probe rows; otherwise scikit-learn's path is kept."""
    from sklearn.ensemble._forest import ForestClassifier

    if not isinstance(model, ForestClassifier) or getattr(model, "n_outputs_", 1) != 1:
        return None
    trees = [estimator.tree_ for estimator in model.estimators_]
    n_classes = int(model.n_classes_)

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float32)  # the trees' own input type, as scikit-learn converts it
        total = np.zeros((x.shape[0], n_classes), dtype=np.float64)
        for tree in trees:
            proba = tree.predict(x)[:, :n_classes]
            normalizer = proba.sum(axis=1)[:, np.newaxis]
            normalizer[normalizer == 0.0] = 1.0
            proba /= normalizer
            total += proba
        total /= len(trees)
        return total

    try:
        n_features = int(model.n_features_in_)
        probes = np.random.default_rng(0).normal(0.0, 10.0, size=(64, n_features))
        probes[0] = 0.0
        if np.array_equal(predict_proba(probes), model.predict_proba(probes)):
            return predict_proba
    except Exception:  # any doubt: scikit-learn's own path
        pass
    log.info("forest fast path off: it does not reproduce this scikit-learn's predict_proba exactly")
    return None


def _load_checking_versions(path: str) -> Tuple[Any, List[str]]:
    """joblib.load, returning the library-version warnings the unpickling raised (scikit-learn
    warns when an estimator was pickled by another version of it)."""
    import joblib

    failure: Optional[Exception] = None
    model = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = joblib.load(path)
        except Exception as err:  # judged below, with the warnings the unpickling raised first
            failure = err
    mismatches = []
    for w in caught:
        text = str(w.message)
        if type(w.message).__name__ == "InconsistentVersionWarning" or "Trying to unpickle estimator" in text:
            # "Trying to unpickle estimator X from version A when using version B", without the advice after it.
            mismatches.append(text.split("\n")[0].split(". ")[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if failure is not None:
        if mismatches:
            # A forest pickled by scikit-learn 1.2, for one, cannot be read by 1.3 or later at all.
            raise ModelVersionError(
                f"{path} was pickled with another library version ({'; '.join(sorted(set(mismatches)))}) and this one cannot "
                f"load it ({type(failure).__name__}: {str(failure).splitlines()[0][:200]}); retrain or re-export it with the "
                "server's versions") from failure
        raise failure
    return model, mismatches


def _library_of(model: Any) -> Dict[str, str]:
    """The library the model's class comes from, with its version: {"xgboost": "1.7.4"}."""
    root = type(model).__module__.split(".")[0]
    return {root: str(getattr(__import__(root), "__version__", "unknown"))}


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _computes_in_float32(model: Any) -> bool:
    """Trees and tree ensembles take their input as float32, whatever it was: a finite value
    beyond float32's range becomes infinity inside them."""
    from sklearn.ensemble import BaseEnsemble
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, BaseDecisionTree):
        return True
    first = np.ravel(getattr(model, "estimators_", [None]))[:1]
    return isinstance(model, BaseEnsemble) and len(first) == 1 and isinstance(first[0], BaseDecisionTree)


#: scikit-learn's modules whose ValueErrors judge the input: check_array and its kin, and the
#: encoders, which refuse a category they never saw ("Found unknown categories ['Paris'] ...").
_INPUT_VALIDATION_MODULES = ("sklearn.utils.validation", "sklearn.utils._param_validation", "sklearn.preprocessing._encoders")


def _raised_by_input_validation(err: BaseException) -> bool:
    """Whether scikit-learn's input validation (check_array and its kin) raised `err`, or the
    error it was raised while handling (SimpleImputer re-raises check_array's): the input's fault,
    unlike an error from inside a broken model, which stays a 500 for the alarms to see."""
    seen = 0
    cause: Optional[BaseException] = err
    while cause is not None and seen < 8:
        if any(frame.f_globals.get("__name__", "").startswith(_INPUT_VALIDATION_MODULES)
               for frame, _ in traceback.walk_tb(cause.__traceback__)):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _largest_magnitude(rows: np.ndarray) -> float:
    """The largest absolute number among the rows: positional rows are floats; rows from records
    are an object array that may also hold strings and missing values."""
    if rows.dtype != object:
        return float(np.max(np.abs(rows))) if rows.size else 0.0
    return max((abs(v) for v in rows.ravel() if v.__class__ is float), default=0.0)


def _refusing_bad_input(model: Any, predict: Callable[[np.ndarray], Prediction]) -> Callable[[np.ndarray], Prediction]:
    """`predict`, answering input the model cannot take with a ModelInputError (a 400), never a
    500: a value beyond the float32 range a tree model computes in, and a ValueError from
    scikit-learn's own input validation. Any other error is the model's, and stays a 500."""
    float32 = _computes_in_float32(model)

    def checked(rows: np.ndarray) -> Prediction:
        if float32 and _largest_magnitude(rows) > _FLOAT32_MAX:
            raise ModelInputError(
                f"a feature is beyond ±{_FLOAT32_MAX:.4g}, the float32 range this {type(model).__name__} computes in")
        try:
            return predict(rows)
        except ValueError as err:
            if isinstance(err, ModelInputError) or not _raised_by_input_validation(err):
                raise
            raise ModelInputError(f"the model rejected the input: {str(err).splitlines()[0][:200]}") from None

    return checked


def _column_names(model: Any) -> Optional[List[str]]:
    """The columns a model trained on a pandas DataFrame was fitted with, in order; None for a
    model fitted on an array (scikit-learn sets feature_names_in_ only for string column names)."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _taking_frames(columns: List[str], predict: Callable[[Any], Prediction]) -> Callable[[np.ndarray], Prediction]:
    """`predict` for a model trained on a DataFrame: the rows become a DataFrame with the model's
    column names, so its ColumnTransformer finds each column by name. Rows that came as records
    are an object array; pandas then infers each column's type (numbers, strings, missing)."""
    import pandas as pd

    def framed(rows: np.ndarray) -> Prediction:
        frame = pd.DataFrame(rows, columns=columns)
        return predict(frame.infer_objects() if rows.dtype == object else frame)

    return framed


@register("pickled")
def load(path: str, settings: Settings) -> LoadedModel:
    import joblib
    import sklearn

    model, mismatches = _load_checking_versions(path)
    if mismatches:
        detail = "; ".join(sorted(set(mismatches)))
        if settings.version_mismatch == "refuse":
            raise ModelVersionError(
                f"{path} was pickled with another library version ({detail}); retrain or re-export it with the "
                "server's versions, or set MODEL_VERSION_MISMATCH=warn to serve it anyway"
            )
        log.warning("VERSION MISMATCH: %s: %s; predictions may differ or fail. Retrain with the server's versions, "
                    "or set MODEL_VERSION_MISMATCH=refuse to refuse such models.", path, detail)
    if not hasattr(model, "predict"):
        raise TypeError(f"{path} holds a {type(model).__name__}, which has no predict() method")

    if _predicts_argmax_of_proba(model):
        # A forest's or tree's predict() is the arg-max of predict_proba(), which it computes
        # again: derive the label from the one set of probabilities (the same answer, one
        # traversal of the trees instead of two).
        classes = model.classes_
        predict_proba = _direct_forest_proba(model) or model.predict_proba

        def predict(rows: Any) -> Prediction:
            proba = predict_proba(rows)
            return Prediction(classes.take(np.argmax(proba, axis=1)).tolist(), proba.tolist())
    else:
        has_proba = hasattr(model, "predict_proba")

        def predict(rows: Any) -> Prediction:
            labels = model.predict(rows).tolist()
            probabilities = model.predict_proba(rows).tolist() if has_proba else None
            return Prediction(labels, probabilities)

    n_features = getattr(model, "n_features_in_", None)
    columns = _column_names(model)
    return LoadedModel(
        path=path,
        loader="joblib",
        predict=_refusing_bad_input(model, _taking_frames(columns, predict) if columns else predict),
        n_features=int(n_features) if n_features is not None else None,
        feature_names=columns,
        info={
            "type": type(model).__name__,
            "sklearn": sklearn.__version__,
            "joblib": joblib.__version__,
            **_library_of(model),
            **({"version_mismatch": "; ".join(sorted(set(mismatches)))} if mismatches else {}),
        },
    )
