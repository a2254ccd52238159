"""Writes models trained on pandas DataFrames, for the records tests:

- pipeline/pipeline.joblib: a ColumnTransformer (imputed and scaled numbers, one-hot string
  categories, unknown categories refused) then a LogisticRegression, on named columns
  age, income, city, plan;
- iris_frame/iris_frame.joblib: a RandomForest fitted on iris as a DataFrame (its columns named
  "sepal length (cm)" and so on), numbers only.

    python3 frame_models.py train DIR
    python3 frame_models.py predict MODEL_FILE RECORDS_JSON   # scikit-learn's own answers, as JSON
"""
import json
import os
import sys

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def customers(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "income": rng.normal(40_000, 12_000, n).round(0),
        "city": rng.choice(["Lyon", "Paris", "Nantes"], n),
        "plan": rng.choice(["basic", "pro"], n),
    })


def train(out: str) -> None:
    frame = customers(400)
    churned = ((frame["plan"] == "basic") & (frame["age"] < 40)) | (frame["city"] == "Nantes")
    pipeline = make_pipeline(
        ColumnTransformer([
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            ("categories", OneHotEncoder(handle_unknown="error"), ["city", "plan"]),
        ]),
        LogisticRegression(max_iter=1000),
    )
    iris = load_iris(as_frame=True)
    models = {
        "pipeline": pipeline.fit(frame, churned.map({True: "churn", False: "stay"})),
        "iris_frame": RandomForestClassifier(n_estimators=20, random_state=0).fit(iris.data, iris.target),
    }
    for name, model in models.items():
        os.makedirs(os.path.join(out, name), exist_ok=True)
        joblib.dump(model, os.path.join(out, name, f"{name}.joblib"))


def predict(model_file: str, records: str) -> None:
    model = joblib.load(model_file)
    frame = pd.DataFrame(json.loads(records), columns=list(model.feature_names_in_)).infer_objects()
    print(json.dumps({"labels": model.predict(frame).tolist(), "probabilities": model.predict_proba(frame).tolist()}))


if __name__ == "__main__":
    {"train": train, "predict": predict}[sys.argv[1]](*sys.argv[2:])
