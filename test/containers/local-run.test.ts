import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { docker } from '../../scripts/docker';
import { Background, freePort, run } from '../../scripts/processes';
import { readRequirements, REQUIREMENTS } from '../../scripts/python-packages';
import { ensureBaseImage } from '../helpers/base-images';
import { http } from '../helpers/model-server';
import { DEBIAN_PYTHON, ensurePinnedPython, sampleModelFile } from '../helpers/pinned-stack';
import { PipMirror } from '../helpers/pip-mirror';

/** `npm run local` as a user runs it, on this machine's CI base images. */
const ROOT = path.join(__dirname, '..', '..');
const TS_NODE = path.join(ROOT, 'node_modules', '.bin', 'ts-node');
let env: NodeJS.ProcessEnv;
let mirror: PipMirror | undefined;
/** The sample model as the image's Python packages load it. */
let sample: string;

beforeAll(async () => {
  // As CI builds the server image: its pip step installs the pins from a mirror on 127.0.0.1;
  // on a machine whose pip cannot fetch them, one line says so and Debian's stand-ins are used.
  mirror = await PipMirror.start(readRequirements(REQUIREMENTS.cpu).map((p) => `${p.name}==${p.version}`)).catch((err: Error) => {
    process.stderr.write(`local-run suite: pip cannot fetch requirements.txt's pins (${err.message}): the server is built on Debian's stand-ins\n`);
    return undefined;
  });
  env = {
    ...process.env,
    LOCAL_SERVER_BASE_IMAGE: await ensureBaseImage(mirror ? 'python-venv' : 'python'),
    LOCAL_FETCHER_BASE_IMAGE: await ensureBaseImage('node'),
    ...(mirror ? { LOCAL_PIP_INDEX_URL: mirror.url } : {}),
  };
  sample = sampleModelFile(mirror ? ensurePinnedPython() : DEBIAN_PYTHON);
}, 1_800_000);

afterAll(async () => {
  await mirror?.stop();
});

/** Started in its own process group, as a terminal runs it, so Ctrl-C reaches all of it. */
function startLocal(...args: string[]): Background {
  return new Background(spawn(TS_NODE, ['--transpile-only', 'scripts/local.ts', ...args], {
    cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  }));
}

/** Containers and volumes left by any `npm run local` run, once Docker has had 10 s to finish removing. */
async function leftovers(): Promise<string[]> {
  let found: string[] = [];
  for (let i = 0; i < 20; i++) {
    found = await listLeftovers();
    if (found.length === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return found;
}

async function listLeftovers(): Promise<string[]> {
  const containers = (await docker(['ps', '-a', '--filter', 'label=cdk-model-serving.run', '--format', '{{.Label "cdk-model-serving.run"}}'])).stdout;
  const volumes = (await docker(['volume', 'ls', '--filter', 'label=cdk-model-serving.run', '--format', '{{.Label "cdk-model-serving.run"}}'])).stdout;
  return `${containers}\n${volumes}`.split('\n').filter((l) => l.startsWith('local-'));
}

async function waitHealthy(url: string, local: Background, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (local.exitCode !== undefined) throw new Error(`npm run local exited early:\n${local.output}`);
    try {
      if ((await http(`${url}/health`)).status === 200) return;
    } catch { /* building or starting */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`never healthy:\n${local.output}`);
}

test.each([
  ['a model file, stopped with Ctrl-C (SIGINT)', () => sample, 'SIGINT'],
  ['a model directory, stopped with SIGTERM', () => path.dirname(sample), 'SIGTERM'],
] as const)('%s: serves on 127.0.0.1, prefixes both logs, and leaves nothing behind', async (_name, modelOf, signal) => {
  const model = modelOf();
  const port = await freePort();
  const local = startLocal('--model', model, '--port', String(port));
  try {
    await waitHealthy(`http://127.0.0.1:${port}`, local);
    const result = await http(`http://127.0.0.1:${port}/predict`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: [6.7, 3.0, 5.2, 2.3] }),
    });
    expect(result.body).toMatchObject({ prediction: 'virginica' });
    expect(local.output).toMatch(/^\[fetcher\] model-fetcher: done: \d+ file\(s\)/m);
    expect(local.output).toMatch(/^\[server\] .*model loaded from \/models\/.*iris\.joblib/m);
    // The cold start as on ECS, from the run's stand-in metadata endpoint: the fetch and the
    // server's start and load; the images were built here, so their pull is unknown.
    for (let i = 0; i < 50 && !/^\[server\] \{"event":"startup"/m.test(local.output); i++) await new Promise((r) => setTimeout(r, 100));
    const startup = JSON.parse(/^\[server\] (\{"event":"startup".*)$/m.exec(local.output)![1]);
    expect(startup).toMatchObject({
      model_fetch_seconds: expect.any(Number), server_start_seconds: expect.any(Number), model_load_seconds: expect.any(Number),
      unknown: ['image_pull_seconds', 'time_to_ready_seconds'],
    });
    expect(startup.model_fetch_seconds).toBeGreaterThan(0);
    expect(await listLeftovers()).not.toEqual([]);
  } finally {
    process.kill(-local.child.pid!, signal);
  }
  const code = await local.waitForExit(60_000);
  expect({ code, leftovers: await leftovers(), output: local.output.slice(-3000) })
    .toEqual({ code: 0, leftovers: [], output: expect.stringMatching(new RegExp(`${signal}: stopping and removing`)) });
  await expect(http(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
}, 900_000);

test('a bad model path is a clear error and starts nothing', async () => {
  const result = await run(TS_NODE, ['--transpile-only', 'scripts/local.ts', '--model', '/no/such/model.joblib'], { cwd: ROOT, env, timeoutMs: 60_000 });
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/\[local\] error: --model \/no\/such\/model\.joblib does not exist/);
  expect(result.stderr).toMatch(/usage: npm run local -- --model <file or directory> \[--port 8080\]/);
  expect(await leftovers()).toEqual([]);
}, 120_000);

test('a model the server cannot load: a clear error, and nothing left running', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bad-model-'));
  await fs.writeFile(path.join(dir, 'model.joblib'), 'not a pickle');
  const local = startLocal('--model', path.join(dir, 'model.joblib'), '--port', String(await freePort()));
  try {
    expect(await local.waitForExit(600_000)).toBe(1);
    expect(local.output).toMatch(/\[server\] .*model failed to load from \/models\/model\.joblib/);
    expect(local.output).toMatch(/\[local\] error: the server container exited with code [1-9]/);
    expect(await leftovers()).toEqual([]);
  } finally {
    if (local.exitCode === undefined) process.kill(-local.child.pid!, 'SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  }
}, 900_000);
