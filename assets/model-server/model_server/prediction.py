"""What every loader hands the server: a loaded model behind one small interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np


class ModelInputError(ValueError):
    """The model could not take a request's (already validated) rows: a client error."""


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
    #: The columns' names, in order, for a model trained on a DataFrame: it takes {"records": [...]} too.
    feature_names: Optional[List[str]] = None
    #: Library versions and the like, shown by /health with HEALTH_DETAILS=true and logged at start-up.
    info: Dict[str, str] = field(default_factory=dict)
