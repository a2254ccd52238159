"""Writes the model server robustness suite's models (see trainRobustnessModels)."""
import io
import os
import sys
import time

import joblib
import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
out = sys.argv[1]
X, y = load_iris(return_X_y=True)

forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
buf = io.BytesIO()
joblib.dump(forest, buf)
version = sklearn.__version__.encode()
other = b"0.0.0"[:len(version)].ljust(len(version), b"0")
stale = buf.getvalue().replace(version, other)
assert stale != buf.getvalue()
os.makedirs(os.path.join(out, "stale"))
open(os.path.join(out, "stale", "forest.joblib"), "wb").write(stale)

try:
    import xgboost
    os.makedirs(os.path.join(out, "xgb"))
    joblib.dump(xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y), os.path.join(out, "xgb", "model.joblib"))
except ImportError:
    pass


try:
    import torch
except ImportError:  # the server's pinned stack has no PyTorch: the slow model is Debian's stack's
    torch = None

if torch is not None:
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
            return h[:, :3]

    module = torch.jit.script(Slow(1000))
    with torch.inference_mode():
        t = time.perf_counter()
        module(torch.zeros(1, 4))
        per_step = (time.perf_counter() - t) / 1000
    os.makedirs(os.path.join(out, "slow-torch"))
    torch.jit.script(Slow(max(1000, int(2.0 / per_step)))).save(os.path.join(out, "slow-torch", "slow.pt"))
