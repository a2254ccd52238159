"""The classic production recipe for serving a model, as a peer row in `npm run bench:serve`:
the seed chapter's Flask app under gunicorn's threaded (gthread) workers instead of Flask's
development server. No micro-batching; each request calls predict and predict_proba itself.

    MODEL_PATH=forest.joblib gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:8000 flask_gunicorn_app:app
"""

import os

import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model = joblib.load(os.environ["MODEL_PATH"])


@app.route("/predict", methods=["POST"])
def predict():
    data = request.get_json()
    features = np.array(data["features"]).reshape(1, -1)
    prediction = model.predict(features)
    probability = model.predict_proba(features)[0]
    return jsonify({"prediction": int(prediction[0]), "probability": probability.tolist()})


@app.route("/health", methods=["GET"])
def health():
    return jsonify({"status": "healthy"})
