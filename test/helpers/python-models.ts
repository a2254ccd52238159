import { execFileSync } from 'node:child_process';
import { SYSTEM_PYTHON } from './processes';

/**
 * Trains the models the server tests use, with the real scikit-learn, and writes them to `dir`:
 * - forest.joblib: the seed chapter's 100-tree RandomForest on iris (integer labels);
 * - regressor.joblib: a LinearRegression (no predict_proba);
 * - slow/slow.joblib: the iris forest, behind a 3-second sleep at load time.
 */
export function trainTestModels(dir: string): void {
  execFileSync(SYSTEM_PYTHON, ['-c', `
import os, sys, time, operator, joblib
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
out = sys.argv[1]
X, y = load_iris(return_X_y=True)
forest = RandomForestClassifier(n_estimators=100, random_state=42).fit(X, y)
joblib.dump(forest, os.path.join(out, "forest.joblib"))
joblib.dump(LinearRegression().fit(X[:, :3], X[:, 3]), os.path.join(out, "regressor.joblib"))

class Sleep:
    def __reduce__(self):
        return (time.sleep, (3,))

class SlowModel:
    """Unpickles as operator.itemgetter(0)((forest, time.sleep(3))): the forest, three seconds later."""
    def __reduce__(self):
        return (operator.itemgetter(0), ((forest, Sleep()),))

os.makedirs(os.path.join(out, "slow"), exist_ok=True)
joblib.dump(SlowModel(), os.path.join(out, "slow", "slow.joblib"))
`, dir], { stdio: 'pipe' });
}

/** scikit-learn's own answers for `rows`, from the model file, to compare the server with. */
export function sklearnPredictions(modelFile: string, rows: number[][]): { labels: unknown[]; probabilities?: number[][] } {
  const out = execFileSync(SYSTEM_PYTHON, ['-c', `
import json, sys, joblib, numpy as np
model = joblib.load(sys.argv[1])
rows = np.asarray(json.loads(sys.argv[2]), dtype=float)
result = {"labels": model.predict(rows).tolist()}
if hasattr(model, "predict_proba"):
    result["probabilities"] = model.predict_proba(rows).tolist()
print(json.dumps(result))
`, modelFile, JSON.stringify(rows)], { encoding: 'utf8' });
  return JSON.parse(out);
}
