import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { http, ModelServerProcess, postChunked } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';
import { sklearnPredictions, trainTestModels } from '../helpers/python-models';

const IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.9, 5.6, 1.8]];
const MAX_BODY_BYTES = 4096;

let workDir: string;

beforeAll(() => {
  requireServerPython();
});

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'server-models-'));
  trainTestModels(workDir);
}, 60_000);

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

/** A model directory holding exactly `files` (copied from the trained models). */
async function modelDir(...files: string[]): Promise<string> {
  const dir = await fs.mkdtemp(path.join(workDir, 'dir-'));
  for (const f of files) await fs.copyFile(f, path.join(dir, path.basename(f)));
  return dir;
}

describe('with the textbook recipe\'s RandomForest', () => {
  let server: ModelServerProcess;
  let forest: string;

  beforeAll(async () => {
    forest = path.join(workDir, 'forest.joblib');
    server = await ModelServerProcess.start({ MODEL_DIR: await modelDir(forest), MAX_BODY_BYTES: String(MAX_BODY_BYTES), HEALTH_DETAILS: 'true' });
    await server.waitForHealth(200);
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('GET /health reports the loaded model, with its details when HEALTH_DETAILS=true', async () => {
    const health = await http(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', model_version: 'unversioned', loader: 'joblib', type: 'RandomForestClassifier', n_features: 4 });
    expect(health.body.sklearn).toMatch(/^\d+\.\d+/);
  });

  test('one row: the prediction and probabilities are scikit-learn\'s own', async () => {
    const expected = sklearnPredictions(forest, IRIS_ROWS);
    for (const [i, row] of IRIS_ROWS.entries()) {
      const result = await server.predict({ features: row });
      expect(result.status).toBe(200);
      expect(result.body.prediction).toBe(expected.labels[i]);
      expect(Number.isInteger(result.body.prediction)).toBe(true);
      expect(result.body.probability).toEqual(expected.probabilities![i]);
    }
  });

  test('a batch of instances: predictions and probabilities in order', async () => {
    const expected = sklearnPredictions(forest, IRIS_ROWS);
    const result = await server.predict({ instances: IRIS_ROWS });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ predictions: expected.labels, probabilities: expected.probabilities });
  });

  test('integers are accepted as feature values', async () => {
    const result = await server.predict({ features: [5, 3, 1, 0] });
    expect(result.status).toBe(200);
  });

  type BadRequest = [name: string, body: unknown, status: number, message: RegExp, headers?: Record<string, string>];
  const badRequests: BadRequest[] = [
    ['malformed JSON', '{"features": [5.1, 3.5', 400, /not valid JSON/],
    ['an empty body', '', 400, /body is empty/],
    ['a JSON array body', '[5.1, 3.5, 1.4, 0.2]', 400, /must be a JSON object/],
    ['a missing field', { values: [1, 2, 3, 4] }, 400, /missing field/],
    ['both fields', { features: [1, 2, 3, 4], instances: [[1, 2, 3, 4]] }, 400, /^send one of "features" \(one row\), "instances" \(a batch\) or "records" \(a batch by column name\), not features and instances$/],
    ['too few features', { features: [5.1, 3.5, 1.4] }, 400, /has 3 values, but the model expects 4/],
    ['too many features', { features: [5.1, 3.5, 1.4, 0.2, 9] }, 400, /has 5 values, but the model expects 4/],
    ['a string feature', { features: [5.1, 'x', 1.4, 0.2] }, 400, /features\[1\] must be a number, got "x"/],
    ['a null feature', { features: [5.1, null, 1.4, 0.2] }, 400, /features\[1\] must be a number, got null/],
    ['a boolean feature', { features: [true, 3.5, 1.4, 0.2] }, 400, /features\[0\] must be a number, got true/],
    ['a nested feature', { features: [[5.1], 3.5, 1.4, 0.2] }, 400, /features\[0\] must be a number/],
    ['NaN', '{"features": [NaN, 3.5, 1.4, 0.2]}', 400, /finite numbers/],
    ['Infinity', '{"features": [Infinity, 3.5, 1.4, 0.2]}', 400, /finite numbers/],
    ['a number too large for a float', '{"features": [1e400, 3.5, 1.4, 0.2]}', 400, /must be a finite number/],
    ['features not a list', { features: 'five' }, 400, /features must be a list of numbers, got str/],
    ['an empty features list', { features: [] }, 400, /features is empty/],
    ['an empty batch', { instances: [] }, 400, /instances is empty/],
    ['a ragged batch', { instances: [[1, 2, 3, 4], [1, 2, 3]] }, 400, /instances\[1\] has 3 values, but the model expects 4/],
    ['a batch row that is not a list', { instances: [5.1, 3.5] }, 400, /instances\[0\] must be a list of numbers/],
    ['a wrong content type', '{"features": [5.1, 3.5, 1.4, 0.2]}', 415, /Content-Type must be application\/json, got 'text\/plain'/, { 'content-type': 'text/plain' }],
    ['no content type', '{"features": [5.1, 3.5, 1.4, 0.2]}', 415, /Content-Type must be application\/json/, {}],
    ['a body over the size limit', { instances: Array(400).fill([5.1, 3.5, 1.4, 0.2]) }, 413, new RegExp(`larger than the ${MAX_BODY_BYTES}-byte limit`)],
    // Each of these once was a 500 with a traceback (RecursionError, OverflowError).
    ['JSON nested 2,000 deep', `{"features": ${'['.repeat(2000)}${']'.repeat(2000)}}`, 400, /^request body is nested too deeply/],
    ['a 400-digit integer', `{"features": [${'9'.repeat(400)}, 3.5, 1.4, 0.2]}`, 400, /^features\[0\] must be a finite number$/],
    ['a long value, echoed only in part', { features: ['x'.repeat(3000), 3.5, 1.4, 0.2] }, 400, /^features\[0\] must be a number, got "x{39}\.\.\.$/],
  ];

  // A rest parameter keeps jest from taking a fifth parameter for a done callback.
  test.each(badRequests)('%s gets a 4xx JSON error', async (...[, body, status, message, headers]: BadRequest) => {
    const result = await server.predict(body, headers);
    expect(result.status).toBe(status);
    expect(result.contentType).toMatch(/application\/json/);
    expect(result.body.error).toMatch(message);
  });

  test('a chunked body (no Content-Length) over the size limit gets 413', async () => {
    const result = await postChunked(`${server.url}/predict`, JSON.stringify({ instances: Array(400).fill([5.1, 3.5, 1.4, 0.2]) }));
    expect(result.status).toBe(413);
    expect(result.body.error).toMatch(/larger than the 4096-byte limit/);
  });

  test('unknown paths and methods get JSON 404 and 405', async () => {
    const missing = await http(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.body).toHaveProperty('error');
    const wrongMethod = await http(`${server.url}/predict`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body).toHaveProperty('error');
  });

  test('after every bad request the server still serves, in the same process', async () => {
    expect(server.process.exitCode).toBeUndefined();
    expect((await http(`${server.url}/health`)).status).toBe(200);
    expect((await server.predict({ features: IRIS_ROWS[0] })).status).toBe(200);
    expect(server.process.output).not.toMatch(/Traceback|Worker exiting \(pid/);
  });
});

test('string labels stay strings (the sample model); /health names no file or library versions by default', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: await modelDir(sampleModelFile(SYSTEM_PYTHON)), MODEL_VERSION: 'iris-v3' });
  try {
    const health = await server.waitForHealth(200);
    expect(health.body).toEqual({ status: 'ok', model_version: 'iris-v3', n_features: 4 });
    const expected = sklearnPredictions(sampleModelFile(SYSTEM_PYTHON), IRIS_ROWS);
    const result = await server.predict({ instances: IRIS_ROWS });
    expect(result.body.predictions).toEqual(expected.labels);
    expect(result.body.predictions).toEqual(['setosa', 'virginica', 'versicolor', 'virginica']);
  } finally {
    await server.stop();
  }
}, 30_000);

test('a model without predict_proba answers without probabilities', async () => {
  const regressor = path.join(workDir, 'regressor.joblib');
  const server = await ModelServerProcess.start({ MODEL_DIR: await modelDir(regressor) });
  try {
    await server.waitForHealth(200);
    const expected = sklearnPredictions(regressor, [[5.1, 3.5, 1.4]]);
    const one = await server.predict({ features: [5.1, 3.5, 1.4] });
    expect(one.body).toEqual({ prediction: expected.labels[0] });
    const batch = await server.predict({ instances: [[5.1, 3.5, 1.4]] });
    expect(batch.body).toEqual({ predictions: expected.labels });
  } finally {
    await server.stop();
  }
}, 30_000);

test('/health answers 503 while the model loads, and 200 once it is loaded', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'slow'), LOAD_WAIT_SECONDS: '0' });
  try {
    const loading = await server.waitForHealth(503);
    expect(loading.body).toEqual({ status: 'loading' });
    const early = await server.predict({ features: IRIS_ROWS[0] });
    expect(early.status).toBe(503);
    expect(early.body.error).toMatch(/not loaded yet/);
    await server.waitForHealth(200);
    expect((await server.predict({ features: IRIS_ROWS[0] })).status).toBe(200);
  } finally {
    await server.stop();
  }
}, 30_000);

test('a prediction sent while the model loads waits for it (up to LOAD_WAIT_SECONDS) instead of failing', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'slow') });
  try {
    await server.waitForHealth(503);
    const started = Date.now();
    const result = await server.predict({ features: IRIS_ROWS[0] });
    expect(result.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThan(500);
  } finally {
    await server.stop();
  }
}, 30_000);

test('MODEL_FILE chooses among several model files; without it the server refuses to guess', async () => {
  const dir = await modelDir(path.join(workDir, 'forest.joblib'), sampleModelFile(SYSTEM_PYTHON));
  const ambiguous = await ModelServerProcess.start({ MODEL_DIR: dir });
  expect(await ambiguous.process.waitForExit(15_000)).toBe(2);
  expect(ambiguous.process.output).toMatch(/2 model files in .*: set MODEL_FILE to the one to serve/);

  const chosen = await ModelServerProcess.start({ MODEL_DIR: dir, MODEL_FILE: 'iris.joblib', HEALTH_DETAILS: 'true' });
  try {
    expect((await chosen.waitForHealth(200)).body.type).toBe('Pipeline');
  } finally {
    await chosen.stop();
  }
}, 30_000);

test('no model in MODEL_DIR: the server exits 2 with a clear message and never serves', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: await modelDir() });
  expect(await server.process.waitForExit(15_000)).toBe(2);
  expect(server.process.output).toMatch(/cannot start: no model file \(\.joblib, \.pkl, \.pickle, \.pt, \.torchscript\) found in/);
}, 30_000);

test('a model file that cannot be loaded stops the server with a non-zero exit', async () => {
  const dir = await modelDir();
  await fs.writeFile(path.join(dir, 'model.joblib'), 'not a pickle');
  const server = await ModelServerProcess.start({ MODEL_DIR: dir });
  expect(await server.process.waitForExit(20_000)).not.toBe(0);
  expect(server.process.exitCode).not.toBeUndefined();
  expect(server.process.output).toMatch(/model failed to load from .*model\.joblib/);
}, 30_000);

test('the server drains and exits 0 on SIGTERM', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: await modelDir(sampleModelFile(SYSTEM_PYTHON)) });
  await server.waitForHealth(200);
  server.process.child.kill('SIGTERM');
  expect(await server.process.waitForExit(15_000)).toBe(0);
}, 30_000);
