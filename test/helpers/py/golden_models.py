"""Writes the golden-request suite's models, each in its own directory below argv[1]:
- disagrees/model.joblib: an iris classifier that answers "setosa" to everything;
- broken/model.joblib: the sample pipeline with a corrupted coefficient matrix (every predict fails);
- slow/slow.pt (+ labels.json): a TorchScript iris "classifier" whose forward pass takes about 1 s.
"""
import json
import os
import sys

import joblib
import numpy as np
from slow_torch import slow_module
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier

out, sample = sys.argv[1], sys.argv[2]
iris = load_iris()
labels = np.asarray(iris.target_names)[iris.target]

os.makedirs(os.path.join(out, "disagrees"))
setosa = DummyClassifier(strategy="constant", constant="setosa").fit(iris.data, labels)
joblib.dump(setosa, os.path.join(out, "disagrees", "model.joblib"))

broken = joblib.load(sample)
broken[-1].coef_ = broken[-1].coef_[:, :2]  # 2 coefficients per class for 4 features
os.makedirs(os.path.join(out, "broken"))
joblib.dump(broken, os.path.join(out, "broken", "model.joblib"))


os.makedirs(os.path.join(out, "slow"))
slow_module(1.0, class0_wins=True).save(os.path.join(out, "slow", "slow.pt"))
json.dump(["setosa", "versicolor", "virginica"], open(os.path.join(out, "slow", "labels.json"), "w"))
