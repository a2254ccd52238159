import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { docker, dockerOk, requireDockerEngine } from '../../scripts/docker';
import { requireServerPython } from '../../scripts/processes';
import { readRequirements, REQUIREMENTS } from '../../scripts/python-packages';
import { modelTask } from '../../scripts/task-containers';
import { buildFetcherImage, buildServerImage, hygiene, IMAGES, ServerContainer, ServerStack, TaskRun, trainingPython } from '../helpers/containers';
import { sampleModelFile } from '../helpers/pinned-stack';
import { sklearnPredictions, trainTorchModels } from '../helpers/python-models';
import { LocalS3 } from '../helpers/s3-server';

/**
 * The real Dockerfiles, built and run the way the ECS task definition wires them: the fetcher
 * writes the model into a volume and exits, then the server mounts it read-only, both as the
 * task definition's user, on read-only root filesystems, with its environment.
 */
const BUCKET = 'models';
const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];

let s3: LocalS3;
let modelSha: string;
/** The image's Python packages, and the scikit-learn that trains (and checks) its models. */
let stack: ServerStack;
let python: string;

beforeAll(async () => {
  requireServerPython();
  await requireDockerEngine();
  await buildFetcherImage();
  stack = await buildServerImage('iris-test');
  python = trainingPython(stack);
  s3 = await LocalS3.start();
  await s3.createBucket(BUCKET);
  const model = await fs.readFile(sampleModelFile(python));
  modelSha = createHash('sha256').update(model).digest('hex');
  await s3.put(BUCKET, 'iris/model.joblib', model);
}, 1_800_000);

afterAll(async () => {
  await TaskRun.removeAll();
  await s3?.stop();
});

describe('fetcher, then server, wired as the task definition wires them', () => {
  let run: TaskRun;
  let server: ServerContainer;

  beforeAll(async () => {
    run = await TaskRun.create(modelTask(`s3://${BUCKET}/iris/model.joblib`, { sha256: modelSha }));
    const fetched = await run.fetch(s3);
    expect(fetched.stderr).toBe('');
    expect(fetched.code).toBe(0);
    expect(fetched.stdout).toMatch(/done: 1 file\(s\)/);
    server = await run.serve(IMAGES.server);
  }, 180_000);

  test('the containers run with the task definition\'s user, read-only roots and mounts', async () => {
    expect(run.task.fetcher).toMatchObject({ user: '10001:10001', readOnlyRootFilesystem: true, essential: false });
    expect(run.task.server).toMatchObject({ user: '10001:10001', readOnlyRootFilesystem: true, dependsOn: [{ container: 'model-fetcher', condition: 'SUCCESS' }] });
    const inspect = await server.inspect();
    expect(inspect.Config.User).toBe('10001:10001');
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect.Mounts.map((m: any) => [m.Destination, m.RW]).sort()).toEqual([['/models', false], ['/tmp', true]]);
    expect(inspect.Config.Env).toEqual(expect.arrayContaining(['MODEL_DIR=/models', 'GRACEFUL_TIMEOUT=25', 'HEALTH_PATH=/health']));
    // The server really cannot write its model or its root.
    const probe = await docker(['exec', server.id, 'python3', '-c',
      'import os\nfor p in ("/models/x", "/app/x"):\n  try:\n    open(p, "w"); print("wrote", p)\n  except OSError as e: print("refused", p, e.errno)']);
    expect(probe.stdout).toMatch(/refused \/models\/x 30/);
    expect(probe.stdout).toMatch(/refused \/app\/x 30/);
  });

  test('/health names the model version the task definition gives (the model\'s checksum), and /predict answers as scikit-learn does', async () => {
    expect((await server.get('/health')).body).toEqual({ status: 'ok', model_version: modelSha.slice(0, 12), n_features: 4 });
    const expected = sklearnPredictions(sampleModelFile(python), ROWS, python);
    const batch = await server.post('/predict', JSON.stringify({ instances: ROWS }));
    expect(batch.status).toBe(200);
    expect(batch.body.predictions).toEqual(expected.labels);
    batch.body.probabilities.forEach((p: number[], i: number) => p.forEach((v, j) => expect(v).toBeCloseTo(expected.probabilities![i][j], 12)));
  });

  test('bad inputs get 4xx JSON errors and the container keeps serving', async () => {
    expect((await server.post('/predict', '{"features": [1, 2]')).status).toBe(400);
    expect((await server.post('/predict', '{"features": [1, 2, 3]}')).body.error).toMatch(/expects 4/);
    expect((await server.post('/predict', '{"features": [NaN, 1, 2, 3]}')).status).toBe(400);
    expect((await server.post('/predict', '{"features": [1, 2, 3, 4]}', 'text/plain')).status).toBe(415);
    expect((await server.post('/predict', JSON.stringify({ features: ROWS[0] }))).status).toBe(200);
    expect((await server.inspect()).State.Running).toBe(true);
  });

  test('the image\'s own HEALTHCHECK reports the container healthy', async () => {
    expect(await server.waitForDockerHealthy()).toBe('healthy');
  }, 120_000);
});

test('behind a path rule on a shared listener: the server answers below the prefix, on the target group\'s health check path', async () => {
  const task = modelTask(`s3://${BUCKET}/iris/model.joblib`, { sha256: modelSha, pathPrefix: '/models/iris', healthCheckPath: '/ready' });
  expect(task.targetHealthCheckPath).toBe('/models/iris/ready');
  const run = await TaskRun.create(task);
  expect((await run.fetch(s3)).code).toBe(0);
  // The load balancer's health check path, as synthesized, is what the container answers.
  const server = await run.serve(IMAGES.server, task.targetHealthCheckPath);
  const predicted = await server.post('/models/iris/predict', JSON.stringify({ features: ROWS[0] }));
  expect(predicted).toEqual({ status: 200, body: expect.objectContaining({ prediction: 'setosa' }) });
  expect((await server.get('/predict')).status).toBe(404);
  expect((await server.get('/health')).status).toBe(404);
  // Metrics: on their own port (the task definition's METRICS_PORT), never where clients are.
  expect(run.task.server.environment.METRICS_PORT).toBe('9090');
  expect((await server.get('/models/iris/metrics')).status).toBe(404);
  expect((await server.get('/metrics')).status).toBe(404);
  const metrics = await fetch(`${server.metricsUrl}/metrics`).then((r) => r.text());
  expect(metrics).toMatch(/model_server_requests_total\{method="POST",path="\/predict",status="200"\} 1\.0/);
  // So does the image's own HEALTHCHECK, which reads the same settings from the task's environment.
  expect(await server.waitForDockerHealthy()).toBe('healthy');
}, 240_000);

test('a missing model: the fetcher exits non-zero with one line, the volume stays empty, the server never starts', async () => {
  const run = await TaskRun.create(modelTask(`s3://${BUCKET}/iris/missing.joblib`));
  const fetched = await run.fetch(s3);
  expect(fetched.code).toBe(1);
  expect(fetched.stderr.trim()).toBe('model-fetcher: error: s3://models/iris/missing.joblib: NoSuchKey: the object does not exist');
  expect(await run.volumeListing()).toBe('');
  // dependsOn SUCCESS: ECS would not start the server; neither does anything here.
  expect((await docker(['ps', '-aq', '--filter', `label=cdk-model-serving.run=${run.id}`])).stdout.trim()).toBe('');
}, 120_000);

test('a checksum mismatch: the fetcher refuses the model and leaves nothing behind', async () => {
  const run = await TaskRun.create(modelTask(`s3://${BUCKET}/iris/model.joblib`, { sha256: 'f'.repeat(64) }));
  const fetched = await run.fetch(s3);
  expect(fetched.code).toBe(1);
  expect(fetched.stderr.trim()).toMatch(/^model-fetcher: error: s3:\/\/models\/iris\/model\.joblib: SHA-256 mismatch, expected f{64} but got [0-9a-f]{64}$/);
  expect(await run.volumeListing()).toBe('');
}, 120_000);

test('the CPU image has no PyTorch: synth refuses a TorchScript model it knows of, and one it cannot see stops the server at start, naming the GPU image', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'torch-'));
  trainTorchModels(dir);
  await s3.put(BUCKET, 'torch/petal.pt', await fs.readFile(path.join(dir, 'regressor', 'petal.pt')));
  expect(() => modelTask(`s3://${BUCKET}/torch/petal.pt`)).toThrow(/invalid 'model': serves 'petal.pt', a TorchScript model, which only the GPU model server serves/);
  // A prefix's files are known only once the task downloads them: the server judges them then.
  const run = await TaskRun.create(modelTask(`s3://${BUCKET}/torch/`));
  expect((await run.fetch(s3)).code).toBe(0);
  const { exitCode, logs } = await run.serveUntilExit(IMAGES.server);
  expect(exitCode).not.toBe(0);
  expect(logs).toMatch(/petal\.pt is a TorchScript model, but this image has no PyTorch: serve it with the GPU image/);
  await fs.rm(dir, { recursive: true, force: true });
}, 180_000);

test('a pipeline trained on a DataFrame, fetched and served by the image, answers records by column name', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'frame-'));
  const frameModels = path.join(__dirname, '..', 'helpers', 'py', 'frame_models.py');
  execFileSync(python, [frameModels, 'train', dir], { stdio: 'pipe' });
  await s3.put(BUCKET, 'churn/pipeline.joblib', await fs.readFile(path.join(dir, 'pipeline', 'pipeline.joblib')));
  const run = await TaskRun.create(modelTask(`s3://${BUCKET}/churn/pipeline.joblib`));
  expect((await run.fetch(s3)).code).toBe(0);
  const server = await run.serve(IMAGES.server);
  const records = [{ age: 41, income: 30_000, city: 'Lyon', plan: 'pro' }, { age: 23, income: 52_000, city: 'Nantes', plan: 'basic' }];
  const expected = JSON.parse(execFileSync(python, [frameModels, 'predict', path.join(dir, 'pipeline', 'pipeline.joblib'), JSON.stringify(records)],
    { encoding: 'utf8' }));
  expect(await server.post('/predict', JSON.stringify({ records }))).toMatchObject({ status: 200, body: { predictions: expected.labels } });
  expect(await server.post('/predict', JSON.stringify({ records: [{ age: 41, income: 1, plan: 'pro' }] })))
    .toEqual({ status: 400, body: { error: 'records[0] is missing column ["city"]' } });
  await fs.rm(dir, { recursive: true, force: true });
}, 180_000);

test('the CPU image carries exactly what requirements.txt pins, installed by its own pip step (or says it could not)', async () => {
  const listed = await dockerOk(['run', '--rm', '--network', 'none', '--entrypoint', 'python3', IMAGES.server, '-c',
    'import importlib.metadata as m, json, sys; print(json.dumps(sorted(f"{d.metadata[\'Name\']}=={d.version}" for d in m.distributions(path=[p for p in sys.path if "/opt/venv/" in p]))))']);
  const inVenv = (JSON.parse(listed) as string[]).map((p) => p.toLowerCase().replace(/[-_.]+(?=.*==)/g, '-'));
  if (stack === 'debian') {
    // This machine's pip could not fetch the pins (buildServerImage said so in one line): the
    // image is on Debian's stand-ins, and its environment installed nothing.
    expect(inVenv).toEqual([]);
    return;
  }
  expect(inVenv).toEqual(readRequirements(REQUIREMENTS.cpu).map((p) => `${p.name}==${p.version}`).sort());
}, 60_000);

describe('image hygiene', () => {
  test.each([[IMAGES.fetcher], [IMAGES.server]])('%s runs as non-root and has no build tools; its size is printed', async (image) => {
    expect(await hygiene(image)).toEqual({ user: '10001:10001', tools: '', uid: '10001' });
  });

  test('the server image has a HEALTHCHECK, EXPOSE 8080 (API) and 9090 (metrics), a JSON-form CMD and the model-version label', async () => {
    const config = JSON.parse(await dockerOk(['image', 'inspect', IMAGES.server]))[0].Config;
    expect(config.Healthcheck.Test).toEqual(['CMD', 'python3', '-m', 'model_server.healthcheck']);
    expect(Object.keys(config.ExposedPorts).sort()).toEqual(['8080/tcp', '9090/tcp']);
    expect(config.Cmd).toEqual(['python3', '-m', 'model_server']);
    expect(config.Labels['ai.model.version']).toBe('iris-test');
    expect(config.Env).toEqual(expect.arrayContaining(['PYTHONUNBUFFERED=1', 'PYTHONDONTWRITEBYTECODE=1', 'PIP_NO_CACHE_DIR=1', 'MODEL_VERSION=iris-test']));
  });
});
