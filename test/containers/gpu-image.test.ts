import { mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { GpuModelService, ModelSource, ServingImage } from '../../lib';
import { MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { buildImage, docker, dockerOk, requireDockerEngine } from '../../scripts/docker';
import { requireServerPython } from '../../scripts/processes';
import { modelTask } from '../../scripts/task-containers';
import { ensureBaseImage } from '../helpers/base-images';
import { buildFetcherImage, buildGpuServerImage, hygiene, IMAGES, ServerContainer, TaskRun } from '../helpers/containers';
import { PipMirror } from '../helpers/pip-mirror';
import { torchOutputs, trainTorchModels } from '../helpers/python-models';
import { LocalS3 } from '../helpers/s3-server';

/**
 * The GPU image (Dockerfile.gpu), built through its BASE_IMAGE argument on a local Debian base
 * that carries what requirements-gpu.txt pins, with Debian's python3-torch: PyTorch built for the
 * CPU only. This machine and CI have no GPU and the image no CUDA, so the server runs the model on
 * the CPU; everything else is the production recipe: its stages, user, health check and the
 * loader's wiring, run as a GpuModelService task definition wires it.
 */
const BUCKET = 'models';
const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];
const LABELS = ['setosa', 'versicolor', 'virginica'];

let s3: LocalS3;
let models: string;
let run: TaskRun;
let server: ServerContainer;

beforeAll(async () => {
  requireServerPython();
  await requireDockerEngine();
  await buildFetcherImage();
  await buildGpuServerImage('resnet-test');
  models = await fs.mkdtemp(path.join(os.tmpdir(), 'gpu-image-'));
  trainTorchModels(models);
  s3 = await LocalS3.start();
  await s3.createBucket(BUCKET);
  for (const f of ['iris.pt', 'labels.json']) await s3.put(BUCKET, `iris-torch/${f}`, await fs.readFile(path.join(models, 'classifier', f)));

  run = await TaskRun.create(modelTask(`s3://${BUCKET}/iris-torch/`, { gpu: true, modelVersion: 'resnet-test' }));
  const fetched = await run.fetch(s3);
  expect(fetched.stderr).toBe('');
  expect(fetched.code).toBe(0);
  expect(fetched.stdout).toMatch(/done: 2 file\(s\)/);
  // HEALTH_DETAILS: so that this test can read which device the worker uses.
  server = await run.serve(IMAGES.gpuServer, '/health', { HEALTH_DETAILS: 'true' });
}, 1_800_000);

afterAll(async () => {
  await TaskRun.removeAll();
  await s3?.stop();
  await fs.rm(models, { recursive: true, force: true });
});

test('the task definition reserves a GPU and gives the server GPU_COUNT; without CUDA the worker runs on the CPU', async () => {
  expect(run.task.server.environment).toMatchObject({ GPU_COUNT: '1', WORKERS: '1', MODEL_DIR: '/models' });
  const health = await server.get('/health');
  expect(health.body).toMatchObject({ status: 'ok', model_version: 'resnet-test', loader: 'torchscript', slot: 0, cuda_visible_devices: '0' });
  // The image has no CUDA (Debian's PyTorch is a CPU build): the loader falls back to the CPU, and says so.
  expect(health.body.device).toBe('cpu');
  const cuda = await dockerOk(['exec', server.id, 'python3', '-c', 'import torch; print(torch.cuda.is_available(), torch.version.cuda)']);
  expect(cuda).toBe('False None');
});

test('predictions are torch\'s own arg-max, named by labels.json', async () => {
  const logits = torchOutputs(path.join(models, 'classifier', 'iris.pt'), ROWS);
  const result = await server.post('/predict', JSON.stringify({ instances: ROWS }));
  expect(result.status).toBe(200);
  expect(result.body.predictions).toEqual(logits.map((l) => LABELS[l.indexOf(Math.max(...l))]));
  expect(result.body.probabilities).toHaveLength(3);
});

test('bad inputs get 4xx JSON errors and the container keeps serving', async () => {
  expect((await server.post('/predict', '{"features": [1, 2]')).status).toBe(400);
  const wrongShape = await server.post('/predict', JSON.stringify({ features: [1, 2, 3] }));
  expect(wrongShape.status).toBe(400);
  expect(wrongShape.body.error).toMatch(/the model rejected the input/);
  expect((await server.post('/predict', '{"features": [1, 2, 3, 4]}', 'text/plain')).status).toBe(415);
  expect((await server.post('/predict', JSON.stringify({ features: ROWS[0] }))).status).toBe(200);
  expect((await server.inspect()).State.Running).toBe(true);
});

test('the image\'s own HEALTHCHECK reports the container healthy', async () => {
  expect(await server.waitForDockerHealthy()).toBe('healthy');
}, 120_000);

test('hygiene: non-root, no compiler or pip in the runtime, the health check, port, CMD and labels', async () => {
  expect(await hygiene(IMAGES.gpuServer)).toEqual({ user: '10001:10001', tools: '', uid: '10001' });
  const config = JSON.parse(await dockerOk(['image', 'inspect', IMAGES.gpuServer]))[0].Config;
  expect(config.Healthcheck.Test).toEqual(['CMD', 'python3', '-m', 'model_server.healthcheck']);
  expect(Object.keys(config.ExposedPorts).sort()).toEqual(['8080/tcp', '9090/tcp']);
  expect(config.Cmd).toEqual(['python3', '-m', 'model_server']);
  expect(config.Labels).toMatchObject({ 'ai.model.version': 'resnet-test', 'org.opencontainers.image.title': 'cdk-model-serving model server (GPU)' });
  expect(config.Env).toEqual(expect.arrayContaining(['PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility']));
});

/**
 * extraRequirements, built for real: the option's build argument, taken from a synthesized app's
 * asset manifest, installs LightGBM into the image from a PyPI mirror (PIP_INDEX_URL) on
 * 127.0.0.1 that serves the pinned wheels, downloaded by this machine's pip.
 */
test('extraRequirements installs a model\'s own packages into the image, from a mirror given as PIP_INDEX_URL', async () => {
  const pins = ['lightgbm==4.7.0'];
  // LightGBM, and narwhals, which it needs and the server pins (Debian's stand-ins in this base lack
  // it); numpy and scipy, which it needs too, are the base's.
  const mirror = await PipMirror.start([...pins, 'narwhals==2.26.0']);
  try {
    const buildArgs = serverAssetBuildArgs(ServingImage.fromModelServer({ gpu: true, extraRequirements: pins }));
    expect(buildArgs.EXTRA_REQUIREMENTS).toBe(pins.join(' '));
    await buildImage(`${IMAGES.gpuServer}-extra`, MODEL_SERVER_DIR, {
      file: 'Dockerfile.gpu',
      buildArgs: { ...buildArgs, BASE_IMAGE: await ensureBaseImage('python-gpu', () => undefined), INSTALL_REQUIREMENTS: 'false', PIP_INDEX_URL: mirror.url },
    });
    const out = await dockerOk(['run', '--rm', '--network', 'none', '--entrypoint', 'python3', `${IMAGES.gpuServer}-extra`, '-c',
      'import lightgbm, importlib.util; print(lightgbm.__version__, importlib.util.find_spec("pip") is None)']);
    expect(out).toBe('4.7.0 True');
    const history = await dockerOk(['image', 'history', '--no-trunc', '--format', '{{.CreatedBy}}', `${IMAGES.gpuServer}-extra`]);
    expect(history).not.toContain('127.0.0.1'); // the mirror is the build stage's alone
  } finally {
    await mirror.stop();
    await docker(['image', 'rm', '--force', `${IMAGES.gpuServer}-extra`]);
  }
}, 1_200_000);

/** The server image's build arguments in the asset manifest of an app whose GPU service runs `image`. */
function serverAssetBuildArgs(image: ServingImage): Record<string, string> {
  const app = new App({ outdir: mkdtempSync(path.join(os.tmpdir(), 'cdk-out-')) });
  const stack = new Stack(app, 'Extra', { env: { account: '123456789012', region: 'eu-west-1' } });
  new GpuModelService(stack, 'Model', { model: ModelSource.fromS3Uri('s3://models/lgbm/model.joblib'), image });
  const manifest = JSON.parse(readFileSync(path.join(app.synth().directory, 'Extra.assets.json'), 'utf8'));
  const sources = Object.values<any>(manifest.dockerImages).map((a) => a.source);
  return sources.find((s) => s.dockerBuildArgs?.EXTRA_REQUIREMENTS).dockerBuildArgs;
}
