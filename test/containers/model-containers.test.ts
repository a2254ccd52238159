import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { buildImage, createVolumes, docker, dockerOk, removeRun, requireDockerEngine, runArgs } from '../../scripts/docker';
import { ContainerSpec, modelTask } from '../../scripts/task-containers';
import { ensureBaseImage } from '../helpers/base-images';
import { freePort, requireServerPython } from '../helpers/processes';
import { sklearnPredictions } from '../helpers/python-models';
import { LocalS3 } from '../helpers/s3-server';

/**
 * The real Dockerfiles, built and run the way the ECS task definition wires them: the fetcher
 * writes the model into a volume and exits, then the server mounts it read-only, both as the
 * task definition's user, on read-only root filesystems, with its environment.
 */
const ROOT = path.join(__dirname, '..', '..');
const SAMPLE_MODEL = path.join(ROOT, 'assets', 'sample-model', 'iris.joblib');
const FETCHER_IMAGE = 'cdk-model-serving-test/model-fetcher:latest';
const SERVER_IMAGE = 'cdk-model-serving-test/model-server:latest';
const BUCKET = 'models';
const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];

let s3: LocalS3;
let modelSha: string;
const runs: string[] = [];

beforeAll(async () => {
  requireServerPython();
  await requireDockerEngine();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const [nodeBase, pythonBase] = [await ensureBaseImage('node', log), await ensureBaseImage('python', log)];
  await buildImage(FETCHER_IMAGE, path.join(ROOT, 'assets', 'model-fetcher'), { buildArgs: { BASE_IMAGE: nodeBase } });
  await buildImage(SERVER_IMAGE, path.join(ROOT, 'assets', 'model-server'), {
    buildArgs: { BASE_IMAGE: pythonBase, INSTALL_REQUIREMENTS: 'false', MODEL_VERSION: 'iris-test' },
  });
  s3 = await LocalS3.start();
  await s3.createBucket(BUCKET);
  const model = await fs.readFile(SAMPLE_MODEL);
  modelSha = createHash('sha256').update(model).digest('hex');
  await s3.put(BUCKET, 'iris/model.joblib', model);
}, 1_800_000);

afterAll(async () => {
  for (const run of runs) await removeRun(run);
  await s3?.stop();
});

function newRun(): string {
  const run = randomBytes(4).toString('hex');
  runs.push(run);
  return run;
}

/** The fetcher exactly as the task definition runs it, pointed at the local S3 server. */
async function runFetcher(run: string, fetcher: ContainerSpec) {
  return docker(runArgs(fetcher, { runId: run, image: FETCHER_IMAGE, environment: s3.env() }), { timeoutMs: 120_000 });
}

async function startServer(run: string, server: ContainerSpec): Promise<{ url: string; id: string }> {
  const port = await freePort();
  const id = await dockerOk(runArgs(server, {
    runId: run, image: SERVER_IMAGE, detach: true,
    // On the host network: listen on loopback only, on a free port.
    environment: { HOST: '127.0.0.1', PORT: String(port), WORKERS: '1' },
  }));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).status === 200) return { url, id };
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the server container never became healthy:\n${(await docker(['logs', id])).stderr}`);
}

async function post(url: string, body: string, contentType = 'application/json') {
  const r = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': contentType }, body, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.json() as any };
}

describe('fetcher, then server, wired as the task definition wires them', () => {
  const run = newRun();
  let server: { url: string; id: string };
  let specs: ReturnType<typeof modelTask>;

  beforeAll(async () => {
    specs = modelTask(`s3://${BUCKET}/iris/model.joblib`, { sha256: modelSha });
    await createVolumes(run, [specs.fetcher, specs.server]);
    const fetched = await runFetcher(run, specs.fetcher);
    expect(fetched.stderr).toBe('');
    expect(fetched.code).toBe(0);
    expect(fetched.stdout).toMatch(/done: 1 file\(s\)/);
    server = await startServer(run, specs.server);
  }, 180_000);

  test('the containers run with the task definition\'s user, read-only roots and mounts', async () => {
    expect(specs.fetcher).toMatchObject({ user: '10001:10001', readOnlyRootFilesystem: true, essential: false });
    expect(specs.server).toMatchObject({ user: '10001:10001', readOnlyRootFilesystem: true, dependsOn: [{ container: 'model-fetcher', condition: 'SUCCESS' }] });
    const inspect = JSON.parse(await dockerOk(['inspect', server.id]))[0];
    expect(inspect.Config.User).toBe('10001:10001');
    expect(inspect.HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect.Mounts.map((m: any) => [m.Destination, m.RW]).sort()).toEqual([['/models', false], ['/tmp', true]]);
    expect(inspect.Config.Env).toEqual(expect.arrayContaining(['MODEL_DIR=/models', 'GRACEFUL_TIMEOUT=25']));
    // The server really cannot write its model or its root.
    const probe = await docker(['exec', server.id, 'python3', '-c',
      'import os\nfor p in ("/models/x", "/app/x"):\n  try:\n    open(p, "w"); print("wrote", p)\n  except OSError as e: print("refused", p, e.errno)']);
    expect(probe.stdout).toMatch(/refused \/models\/x 30/);
    expect(probe.stdout).toMatch(/refused \/app\/x 30/);
  });

  test('/health, and /predict answers as scikit-learn does', async () => {
    const health = await fetch(`${server.url}/health`).then((r) => r.json()) as any;
    expect(health).toMatchObject({ status: 'ok', loader: 'joblib', model: '/models/model.joblib' });
    const expected = sklearnPredictions(SAMPLE_MODEL, ROWS);
    const batch = await post(server.url, JSON.stringify({ instances: ROWS }));
    expect(batch.status).toBe(200);
    expect(batch.body.predictions).toEqual(expected.labels);
    batch.body.probabilities.forEach((p: number[], i: number) => p.forEach((v, j) => expect(v).toBeCloseTo(expected.probabilities![i][j], 12)));
  });

  test('bad inputs get 4xx JSON errors and the container keeps serving', async () => {
    expect((await post(server.url, '{"features": [1, 2]')).status).toBe(400);
    expect((await post(server.url, '{"features": [1, 2, 3]}')).body.error).toMatch(/expects 4/);
    expect((await post(server.url, '{"features": [NaN, 1, 2, 3]}')).status).toBe(400);
    expect((await post(server.url, '{"features": [1, 2, 3, 4]}', 'text/plain')).status).toBe(415);
    expect((await post(server.url, JSON.stringify({ features: ROWS[0] }))).status).toBe(200);
    const state = JSON.parse(await dockerOk(['inspect', server.id]))[0].State;
    expect(state.Running).toBe(true);
  });

  test('the image\'s own HEALTHCHECK reports the container healthy', async () => {
    const deadline = Date.now() + 90_000;
    let status = '';
    while (Date.now() < deadline) {
      status = JSON.parse(await dockerOk(['inspect', server.id]))[0].State.Health?.Status;
      if (status === 'healthy') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(status).toBe('healthy');
  }, 120_000);
});

test('a missing model: the fetcher exits non-zero with one line, the volume stays empty, the server never starts', async () => {
  const run = newRun();
  const specs = modelTask(`s3://${BUCKET}/iris/missing.joblib`);
  await createVolumes(run, [specs.fetcher, specs.server]);
  const fetched = await runFetcher(run, specs.fetcher);
  expect(fetched.code).toBe(1);
  expect(fetched.stderr.trim()).toBe('model-fetcher: error: s3://models/iris/missing.joblib: NoSuchKey: the object does not exist');
  const listing = await docker(['run', '--rm', '--network', 'none', '--mount', `type=volume,source=cdk-model-serving-${run}-model,target=/m`, '--entrypoint', 'ls', FETCHER_IMAGE, '-A', '/m']);
  expect(listing.stdout.trim()).toBe('');
  // dependsOn SUCCESS: ECS would not start the server; neither does anything here.
  expect((await docker(['ps', '-aq', '--filter', `label=cdk-model-serving.run=${run}`])).stdout.trim()).toBe('');
}, 120_000);

test('a checksum mismatch: the fetcher refuses the model and leaves nothing behind', async () => {
  const run = newRun();
  const specs = modelTask(`s3://${BUCKET}/iris/model.joblib`, { sha256: 'f'.repeat(64) });
  await createVolumes(run, [specs.fetcher, specs.server]);
  const fetched = await runFetcher(run, specs.fetcher);
  expect(fetched.code).toBe(1);
  expect(fetched.stderr.trim()).toMatch(/^model-fetcher: error: s3:\/\/models\/iris\/model\.joblib: SHA-256 mismatch, expected f{64} but got [0-9a-f]{64}$/);
  const listing = await docker(['run', '--rm', '--network', 'none', '--mount', `type=volume,source=cdk-model-serving-${run}-model,target=/m`, '--entrypoint', 'ls', FETCHER_IMAGE, '-A', '/m']);
  expect(listing.stdout.trim()).toBe('');
}, 120_000);

describe('image hygiene', () => {
  test.each([[FETCHER_IMAGE], [SERVER_IMAGE]])('%s runs as non-root and has no build tools; its size is printed', async (image) => {
    const inspect = JSON.parse(await dockerOk(['image', 'inspect', image]))[0];
    expect(inspect.Config.User).toBe('10001:10001');
    const tools = await docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c',
      'for t in gcc cc g++ make pip pip3; do command -v $t; done; id -u']);
    expect(tools.stdout.trim()).toBe('10001');
    process.stdout.write(`image size: ${image}: ${(inspect.Size / 2 ** 20).toFixed(0)} MiB\n`);
  });

  test('the server image has a HEALTHCHECK, EXPOSE 8080, a JSON-form CMD and the model-version label', async () => {
    const config = JSON.parse(await dockerOk(['image', 'inspect', SERVER_IMAGE]))[0].Config;
    expect(config.Healthcheck.Test).toEqual(['CMD', 'python3', '-m', 'model_server.healthcheck']);
    expect(Object.keys(config.ExposedPorts)).toEqual(['8080/tcp']);
    expect(config.Cmd).toEqual(['python3', '-m', 'model_server']);
    expect(config.Labels['ai.model.version']).toBe('iris-test');
    expect(config.Env).toEqual(expect.arrayContaining(['PYTHONUNBUFFERED=1', 'PYTHONDONTWRITEBYTECODE=1', 'PIP_NO_CACHE_DIR=1']));
  });
});
