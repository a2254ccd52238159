"""Trains the sample model: an iris classifier saved with joblib.

    python3 train.py [OUTPUT]        # default: iris.joblib beside this script

Its labels are the species names (strings), and it has predict_proba, so it exercises the whole
/predict contract. A LogisticRegression keeps the file small and loads across scikit-learn
versions; retrain it with the scikit-learn version you serve with to silence the version warning.
"""

import os
import sys

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(output: str) -> None:
    iris = load_iris()
    labels = np.asarray(iris.target_names)[iris.target]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(iris.data, labels)
    joblib.dump(model, output)
    print(f"wrote {output}: accuracy on the training set {model.score(iris.data, labels):.3f}")


if __name__ == "__main__":
    train(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "iris.joblib"))
