import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { http, ModelServerProcess } from '../helpers/model-server';
import { sampleModelDir } from '../helpers/pinned-stack';

/**
 * Models trained on pandas DataFrames, served by column name: {"records": [{...}, ...]} on the real
 * server with the real scikit-learn and pandas. The answers are scikit-learn's own for the same
 * DataFrame; a missing or unknown column, a value of the wrong kind, or a category the model never
 * saw is a 400 that names it, and the server answers the next request. The positional contract
 * ({"features"}, {"instances"}) still holds beside it.
 */
const FRAME_MODELS = path.join(__dirname, '..', 'helpers', 'py', 'frame_models.py');
let dir: string;

beforeAll(() => {
  requireServerPython();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'records-'));
  execFileSync(SYSTEM_PYTHON, [FRAME_MODELS, 'train', dir], { stdio: 'pipe' });
}, 180_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function sklearnAnswers(model: string, records: object[]): { labels: unknown[]; probabilities: number[][] } {
  return JSON.parse(execFileSync(SYSTEM_PYTHON, [FRAME_MODELS, 'predict', path.join(dir, model, `${model}.joblib`), JSON.stringify(records)],
    { encoding: 'utf8' }));
}

describe('a ColumnTransformer pipeline with numbers and string categories', () => {
  let server: ModelServerProcess;
  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(dir, 'pipeline') });
    await server.waitForHealth(200, 30_000);
  }, 60_000);
  afterAll(async () => server?.stop());

  const records = [
    { age: 41, income: 30_000, city: 'Lyon', plan: 'pro' },
    { city: 'Nantes', plan: 'basic', income: 52_500.5, age: 23 },
    { age: null, income: 45_000, city: 'Paris', plan: 'basic' },
  ];

  test('/health names its columns, in the model\'s order', async () => {
    const health = await http(`${server.url}/health`);
    expect(health.body).toMatchObject({ n_features: 4, feature_names: ['age', 'income', 'city', 'plan'] });
  });

  test('records, in any key order and with a missing value, get scikit-learn\'s own answers for the same DataFrame', async () => {
    const answer = await server.predict({ records });
    expect(answer.status).toBe(200);
    const expected = sklearnAnswers('pipeline', records);
    expect(answer.body.predictions).toEqual(expected.labels);
    answer.body.probabilities.forEach((row: number[], i: number) => row.forEach((p, j) => expect(p).toBeCloseTo(expected.probabilities[i][j], 12)));
  });

  test('concurrent records requests, batched together, each get their own answers', async () => {
    const answers = await Promise.all(records.map((r) => server.predict({ records: [r] })));
    expect(answers.map((a) => a.body.predictions[0])).toEqual(sklearnAnswers('pipeline', records).labels);
  });

  test.each<[string, unknown, RegExp]>([
    ['a missing column', { records: [{ age: 41, income: 1, plan: 'pro' }] }, /^records\[0\] is missing column \["city"\]$/],
    ['two missing columns', { records: [{ age: 41, income: 1 }] }, /^records\[0\] is missing columns \["city", "plan"\]$/],
    ['an extra column', { records: [{ ...records[0], town: 'Lyon' }] },
      /^records\[0\] has column \["town"\], which the model was not trained on \(its columns: \["age", "income", "city", "plan"\]\)$/],
    ['a list value', { records: [{ ...records[0], city: ['Lyon'] }] }, /^records\[0\]\["city"\] must be a number, a string or null, got \["Lyon"\]$/],
    ['a boolean value', { records: [{ ...records[0], age: true }] }, /^records\[0\]\["age"\] must be a number, a string or null, got true$/],
    ['a record that is not an object', { records: [[41, 1, 'Lyon', 'pro']] }, /^records\[0\] must be an object of column names and values, got list$/],
    ['records that are not a list', { records: { age: 41 } }, /^records must be a list of objects, got dict$/],
    ['no records', { records: [] }, /^records is empty/],
    ['records beside features', { records, features: [1, 2, 3, 4] }, /^send one of .* not features and records$/],
    ['a category the model never saw', { records: [{ ...records[0], city: 'Marseille' }] }, /^the model rejected the input: Found unknown categories \['Marseille'\]/],
    ['a string where the model takes a number', { records: [{ ...records[0], age: 'forty' }] }, /^the model rejected the input: /],
  ])('%s is a 400 that names it, and the next request is answered', async (_name, body, message) => {
    const refused = await server.predict(body);
    expect([refused.status, refused.body.error]).toEqual([400, expect.stringMatching(message)]);
    expect((await server.predict({ records: [records[0]] })).status).toBe(200);
  });
});

describe('a forest fitted on a DataFrame of numbers', () => {
  let server: ModelServerProcess;
  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(dir, 'iris_frame') });
    await server.waitForHealth(200, 30_000);
  }, 60_000);
  afterAll(async () => server?.stop());

  test('records and positional rows get the same answers, which are scikit-learn\'s own', async () => {
    const names = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'];
    const rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
    const records = rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])));
    const [byName, byPosition, one] = await Promise.all([
      server.predict({ records }), server.predict({ instances: rows }), server.predict({ features: rows[1] }),
    ]);
    expect(byName.body.predictions).toEqual(sklearnAnswers('iris_frame', records).labels);
    expect(byPosition.body.predictions).toEqual(byName.body.predictions);
    expect(byPosition.body.probabilities).toEqual(byName.body.probabilities);
    expect(one.body.prediction).toBe(byName.body.predictions[1]);
  });

  test('a record with a number beyond float32, which this forest computes in, is a 400 as a positional row is', async () => {
    const record = { 'sepal length (cm)': 1e308, 'sepal width (cm)': 3.5, 'petal length (cm)': 1.4, 'petal width (cm)': 0.2 };
    const [byName, byPosition] = await Promise.all([server.predict({ records: [record] }), server.predict({ features: [1e308, 3.5, 1.4, 0.2] })]);
    for (const refused of [byName, byPosition]) {
      expect([refused.status, refused.body.error]).toEqual([400, expect.stringMatching(/the float32 range this RandomForestClassifier computes in/)]);
    }
  });
});

test('the sample model, fitted on an array, takes no records, and says to send features', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: sampleModelDir(SYSTEM_PYTHON) });
  try {
    const health = await server.waitForHealth(200, 30_000);
    expect(health.body.feature_names).toBeUndefined();
    const refused = await server.predict({ records: [{ a: 1 }] });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/^this model was trained without column names, so it takes rows by position: send \{"features": \[\.\.\.\]\}/);
  } finally {
    await server.stop();
  }
}, 60_000);
