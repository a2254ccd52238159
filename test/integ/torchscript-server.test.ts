import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { ModelServerProcess } from '../helpers/model-server';
import { torchOutputs, trainTorchModels } from '../helpers/python-models';

const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
const LABELS = ['setosa', 'versicolor', 'virginica'];
let workDir: string;

const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
};

beforeAll(() => {
  requireServerPython();
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', 'import torch'], { stdio: 'pipe' });
  } catch {
    throw new Error(`${SYSTEM_PYTHON} cannot import torch: install Debian's python3-torch ('apt-get install -y python3-torch'; .ci/run does this)`);
  }
});

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'torch-models-'));
  trainTorchModels(workDir);
}, 120_000);

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

describe('a TorchScript classifier on the CPU', () => {
  let server: ModelServerProcess;
  const model = () => path.join(workDir, 'classifier', 'iris.pt');

  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'classifier'), MODEL_N_FEATURES: '4', HEALTH_DETAILS: 'true' });
    await server.waitForHealth(200, 60_000);
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('/health names the loader and the device', async () => {
    const health = await server.waitForHealth(200);
    expect(health.body).toMatchObject({ status: 'ok', loader: 'torchscript', device: 'cpu' });
    expect(health.body.torch).toMatch(/^\d+\.\d+/);
  });

  test('predictions are the arg-max of torch\'s own output, named by labels.json, with softmax probabilities', async () => {
    const logits = torchOutputs(model(), ROWS);
    const result = await server.predict({ instances: ROWS });
    expect(result.status).toBe(200);
    expect(result.body.predictions).toEqual(logits.map((l) => LABELS[l.indexOf(Math.max(...l))]));
    result.body.probabilities.forEach((p: number[], i: number) => {
      softmax(logits[i]).forEach((v, j) => expect(p[j]).toBeCloseTo(v, 5));
    });
    const one = await server.predict({ features: ROWS[0] });
    expect(one.body.prediction).toBe(result.body.predictions[0]);
  });

  test('a wrong feature count is a 400 that names it, and the server keeps serving', async () => {
    const result = await server.predict({ features: [1, 2, 3] });
    expect(result.status).toBe(400);
    expect(result.body.error).toMatch(/has 3 values, but the model expects 4/);
    expect((await server.predict({ features: ROWS[1] })).status).toBe(200);
  });
});

test('a TorchScript regressor answers one number per row; a shape it rejects is a 400', async () => {
  const dir = path.join(workDir, 'regressor');
  const server = await ModelServerProcess.start({ MODEL_DIR: dir });
  try {
    await server.waitForHealth(200, 60_000);
    const expected = torchOutputs(path.join(dir, 'petal.pt'), [[5.1, 3.5, 1.4]]);
    const result = await server.predict({ features: [5.1, 3.5, 1.4] });
    expect(result.status).toBe(200);
    expect(result.body.prediction).toBeCloseTo(expected[0][0], 5);
    expect(result.body).not.toHaveProperty('probability');
    // No MODEL_N_FEATURES: the model itself rejects the wrong shape, as a client error.
    const bad = await server.predict({ features: [1, 2, 3, 4, 5] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/the model rejected the input/);
    expect((await server.predict({ features: [5.1, 3.5, 1.4] })).status).toBe(200);
  } finally {
    await server.stop();
  }
}, 90_000);
