"""Writes the golden-request suite's models, each in its own directory below argv[1]:
- disagrees/model.joblib: an iris classifier that answers "setosa" to everything;
- broken/model.joblib: the sample pipeline with a corrupted coefficient matrix (every predict fails);
- slow/slow.pt (+ labels.json): a TorchScript iris "classifier" whose forward pass takes about 1 s.
"""
import json
import os
import sys
import time

import joblib
import numpy as np
import torch
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


class Slow(torch.nn.Module):
    steps: int

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        self.w = torch.nn.Parameter(torch.eye(256) * 0.5)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 256) + x.sum()
        for _ in range(self.steps):
            h = torch.tanh(h @ self.w + 0.1)
        return torch.cat([h[:, :1] + 1.0, h[:, 1:3]], dim=1)  # class 0 wins


probe = torch.jit.script(Slow(1000))
with torch.inference_mode():
    for _ in range(3):  # TorchScript optimizes on the first runs: time a warm one
        probe(torch.zeros(1, 4))
    t = time.perf_counter()
    probe(torch.zeros(1, 4))
    per_step = (time.perf_counter() - t) / 1000
os.makedirs(os.path.join(out, "slow"))
torch.jit.script(Slow(max(1000, int(1.0 / per_step)))).save(os.path.join(out, "slow", "slow.pt"))
json.dump(["setosa", "versicolor", "virginica"], open(os.path.join(out, "slow", "labels.json"), "w"))
