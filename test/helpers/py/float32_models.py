"""Writes models that take their input as float32 (tree models), for the 4xx-never-500 tests:
forest.joblib (a RandomForestClassifier), gbc.joblib (a GradientBoostingClassifier) and
scaled_forest.joblib (StandardScaler then RandomForest), all on iris.

    python3 float32_models.py DIR
"""
import os
import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out = sys.argv[1]
X, y = load_iris(return_X_y=True)
models = {
    "forest": RandomForestClassifier(n_estimators=20, random_state=0),
    "gbc": GradientBoostingClassifier(n_estimators=20, random_state=0),
    "scaled_forest": make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0)),
}
for name, model in models.items():
    os.makedirs(os.path.join(out, name), exist_ok=True)
    joblib.dump(model.fit(X, y), os.path.join(out, name, f"{name}.joblib"))
