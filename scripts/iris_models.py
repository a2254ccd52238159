"""The iris models of the server tests and of `npm run bench:serve`, trained with the real
scikit-learn (scripts/iris-models.ts names this file):

    python3 iris_models.py forest OUT.joblib   # the textbook recipe's model: a 100-tree RandomForest
    python3 iris_models.py slow-forest OUT.joblib  # a 1,000-tree RandomForest: a slow model (npm run bench:shed)
    python3 iris_models.py noop OUT.joblib     # a DummyClassifier: the cost of the server's front alone
    python3 iris_models.py test-set DIR        # forest.joblib, regressor.joblib and slow/slow.joblib in DIR
"""

import operator
import os
import sys
import time

import joblib
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

X, y = load_iris(return_X_y=True)


def forest(trees: int = 100) -> RandomForestClassifier:
    """The textbook chapter's model: 100 trees on iris, integer labels."""
    return RandomForestClassifier(n_estimators=trees, random_state=42).fit(X, y)


class Sleep:
    def __reduce__(self):
        return (time.sleep, (3,))


class SlowModel:
    """Unpickles as operator.itemgetter(0)((forest, time.sleep(3))): the forest, three seconds later."""

    def __init__(self, model):
        self.model = model

    def __reduce__(self):
        return (operator.itemgetter(0), ((self.model, Sleep()),))


def test_set(out: str) -> None:
    """forest.joblib; regressor.joblib, a LinearRegression (no predict_proba); slow/slow.joblib,
    the forest behind a 3-second sleep at load time."""
    model = forest()
    joblib.dump(model, os.path.join(out, "forest.joblib"))
    joblib.dump(LinearRegression().fit(X[:, :3], X[:, 3]), os.path.join(out, "regressor.joblib"))
    os.makedirs(os.path.join(out, "slow"), exist_ok=True)
    joblib.dump(SlowModel(model), os.path.join(out, "slow", "slow.joblib"))


if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "forest":
        joblib.dump(forest(), out)
    elif kind == "slow-forest":
        joblib.dump(forest(1000), out)
    elif kind == "noop":
        joblib.dump(DummyClassifier(strategy="prior").fit(X, y), out)
    elif kind == "test-set":
        test_set(out)
    else:
        sys.exit(f"unknown model kind {kind!r}: forest, noop or test-set")
