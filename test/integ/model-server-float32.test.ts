import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { ModelServerProcess } from '../helpers/model-server';

/**
 * 4xx, never 500, for models that compute in float32 (scikit-learn's trees and tree ensembles):
 * a finite feature beyond float32's range, alone or through a pipeline's scaler, is refused with a
 * 400 that says why, and the server keeps answering. A 500 would feed the 5xx alarm that rolls
 * deployments back.
 */
let dir: string;

beforeAll(() => {
  requireServerPython();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'float32-'));
  execFileSync(SYSTEM_PYTHON, [path.join(__dirname, '..', 'helpers', 'py', 'float32_models.py'), dir], { stdio: 'pipe' });
}, 120_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(['forest', 'gbc', 'scaled_forest'])('a %s', (model) => {
  let server: ModelServerProcess;
  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(dir, model) });
    await server.waitForHealth(200, 30_000);
  }, 60_000);
  afterAll(async () => server?.stop());

  test.each([1e308, 3.5e38, -1e300])('a feature of %p is a 400 that says why, and the next request is answered', async (value) => {
    const refused = await server.predict({ features: [value, 3.5, 1.4, 0.2] });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/float32 range|the model rejected the input/);
    expect((await server.predict({ features: [5.1, 3.5, 1.4, 0.2] })).status).toBe(200);
  });

  test('a batch with one such row refuses that request alone', async () => {
    const answers = await Promise.all([
      server.predict({ features: [5.1, 3.5, 1.4, 0.2] }),
      server.predict({ features: [1e308, 3.5, 1.4, 0.2] }),
      server.predict({ instances: [[6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 400, 200]);
  });
});
