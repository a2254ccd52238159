import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { IRIS_TRAINER } from '../../scripts/iris-models';
import { SYSTEM_PYTHON } from '../../scripts/processes';

/**
 * Trains the models the server tests use, with the real scikit-learn, and writes them to `dir`:
 * - forest.joblib: the textbook recipe's 100-tree RandomForest on iris (integer labels);
 * - regressor.joblib: a LinearRegression (no predict_proba);
 * - slow/slow.joblib: the iris forest, behind a 3-second sleep at load time.
 */
export function trainTestModels(dir: string): void {
  execFileSync(SYSTEM_PYTHON, [IRIS_TRAINER, 'test-set', dir], { stdio: 'pipe' });
}

/** scikit-learn's own answers for `rows`, from the model file, to compare the server with. */
export function sklearnPredictions(modelFile: string, rows: number[][], python: string = SYSTEM_PYTHON):
{ labels: unknown[]; probabilities?: number[][] } {
  const out = execFileSync(python, ['-c', `
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

/**
 * Trains small TorchScript models with Debian's PyTorch and writes them to `dir`:
 * - classifier/iris.pt with classifier/labels.json: a linear iris classifier (3 classes);
 * - regressor/petal.pt: one output per row.
 */
export function trainTorchModels(dir: string): void {
  execFileSync(SYSTEM_PYTHON, ['-c', `
import json, os, sys, torch
from sklearn.datasets import load_iris
out = sys.argv[1]
torch.manual_seed(0)
X, y = load_iris(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32); y = torch.tensor(y)
clf = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
opt = torch.optim.Adam(clf.parameters(), lr=0.05)
for _ in range(200):
    opt.zero_grad(); loss = torch.nn.functional.cross_entropy(clf(X), y); loss.backward(); opt.step()
os.makedirs(os.path.join(out, "classifier"), exist_ok=True)
torch.jit.script(clf.eval()).save(os.path.join(out, "classifier", "iris.pt"))
json.dump(["setosa", "versicolor", "virginica"], open(os.path.join(out, "classifier", "labels.json"), "w"))
reg = torch.nn.Linear(3, 1)
os.makedirs(os.path.join(out, "regressor"), exist_ok=True)
torch.jit.script(reg.eval()).save(os.path.join(out, "regressor", "petal.pt"))
`, dir], { stdio: 'pipe' });
}

/** The raw output of a TorchScript model for `rows`, computed by torch itself. */
export function torchOutputs(modelFile: string, rows: number[][]): number[][] {
  const out = execFileSync(SYSTEM_PYTHON, ['-c', `
import json, sys, torch
module = torch.jit.load(sys.argv[1])
with torch.inference_mode():
    print(json.dumps(module(torch.tensor(json.loads(sys.argv[2]), dtype=torch.float32)).tolist()))
`, modelFile, JSON.stringify(rows)], { encoding: 'utf8' });
  return JSON.parse(out);
}

/**
 * Writes models for the server's robustness tests to `dir`:
 * - stale/forest.joblib: an iris forest whose pickle says another scikit-learn version wrote it;
 * - xgb/model.joblib: an XGBoost classifier on iris (when xgboost is installed);
 * - slow-torch/slow.pt: a TorchScript module whose forward pass takes about 2 s on this machine.
 */
export function trainRobustnessModels(dir: string): void {
  execFileSync(SYSTEM_PYTHON, [path.join(__dirname, 'py', 'robustness_models.py'), dir], { stdio: 'pipe' });
}
