import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SAMPLE_MODEL_DIR } from '../../lib/asset-paths';
import { ModelServerProcess } from '../helpers/model-server';
import { DEBIAN_PYTHON, ensurePinnedPython } from '../helpers/pinned-stack';
import { sklearnPredictions } from '../helpers/python-models';

/**
 * The version-skew policy on the pinned stack (scikit-learn 1.9.1, numpy 2), with models pickled
 * by Debian's scikit-learn 1.2.1 (numpy 1.24), as a team's older training job would write them:
 * a pipeline that still loads is served with a warning by default and refused on request; a forest,
 * which 1.9.1 cannot read at all, stops the server with one line that names both versions.
 */
const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
let pinned: string;
let dir: string;

beforeAll(async () => {
  pinned = ensurePinnedPython();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'version-skew-'));
  for (const kind of ['pipeline', 'forest']) await fs.mkdir(path.join(dir, kind));
  execFileSync(DEBIAN_PYTHON, [path.join(SAMPLE_MODEL_DIR, 'train.py'), path.join(dir, 'pipeline', 'iris.joblib')], { stdio: 'pipe' });
  execFileSync(DEBIAN_PYTHON, ['-c', `
import joblib, sys
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
joblib.dump(RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y), sys.argv[1])
`, path.join(dir, 'forest', 'forest.joblib')], { stdio: 'pipe' });
}, 900_000);

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

test('a pipeline pickled by 1.2.1 is served on 1.9.1 with a VERSION MISMATCH warning, answering as 1.2.1 did', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(dir, 'pipeline'), HEALTH_DETAILS: 'true' }, pinned);
  try {
    const health = await server.waitForHealth(200, 60_000);
    expect(health.body).toMatchObject({ sklearn: '1.9.1', version_mismatch: expect.stringMatching(/from version 1\.2\.1 when using version 1\.9\.1/) });
    expect(server.process.output).toMatch(/VERSION MISMATCH: .*iris\.joblib: Trying to unpickle estimator \w+ from version 1\.2\.1 when using version 1\.9\.1/);
    const answer = await server.predict({ instances: ROWS });
    const debian = sklearnPredictions(path.join(dir, 'pipeline', 'iris.joblib'), ROWS, DEBIAN_PYTHON);
    expect(answer.body.predictions).toEqual(debian.labels);
    answer.body.probabilities.forEach((row: number[], i: number) => row.forEach((p, j) => expect(p).toBeCloseTo(debian.probabilities![i][j], 9)));
  } finally {
    await server.stop();
  }
}, 90_000);

test('MODEL_VERSION_MISMATCH=refuse stops the server on that pipeline, saying what to do', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(dir, 'pipeline'), MODEL_VERSION_MISMATCH: 'refuse' }, pinned);
  expect(await server.process.waitForExit(60_000)).not.toBe(0);
  expect(server.process.output).toMatch(
    /was pickled with another library version \(Trying to unpickle estimator \w+ from version 1\.2\.1 when using version 1\.9\.1(; [^)]*)?\); retrain or re-export it/);
}, 90_000);

test('a forest pickled by 1.2.1, which 1.9.1 cannot read, stops the server with one line naming both versions, whatever the policy', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(dir, 'forest') }, pinned);
  expect(await server.process.waitForExit(60_000)).not.toBe(0);
  const failures = server.process.output.split('\n').filter((l) => l.startsWith('{"event":"model_start_failed"'));
  expect(failures).toHaveLength(1);
  expect(JSON.parse(failures[0]).reason).toMatch(
    /forest\.joblib was pickled with another library version \(Trying to unpickle estimator DecisionTreeClassifier from version 1\.2\.1 when using version 1\.9\.1\) and this one cannot load it \(ValueError: node array from the pickle has an incompatible dtype:?\); retrain or re-export it/);
}, 90_000);
