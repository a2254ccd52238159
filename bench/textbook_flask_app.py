"""The textbook recipe for serving a scikit-learn model, written for `npm run bench:serve` as its
baseline: a Flask app with the same routes and behaviour as the textbook chapter's app (POST
/predict with {"features": [...]}, answered with the prediction and the class probabilities; GET
/health). The benchmark runs it two ways, as the textbook does and as production usually does:

    MODEL_PATH=forest.joblib PORT=8000 python3 textbook_flask_app.py                 # Flask's development server
    MODEL_PATH=forest.joblib gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:8000 textbook_flask_app:app

No micro-batching: each request calls predict and predict_proba itself.
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


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
