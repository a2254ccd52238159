"""Writes the model server robustness suite's models (see trainRobustnessModels)."""
import io
import os
import sys

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
    from slow_torch import slow_module
except ImportError:  # the server's pinned stack has no PyTorch: the slow model is Debian's stack's
    slow_module = None

if slow_module is not None:
    os.makedirs(os.path.join(out, "slow-torch"))
    slow_module(2.0).save(os.path.join(out, "slow-torch", "slow.pt"))
