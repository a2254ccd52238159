import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';

/**
 * The cold-start timeline: the real server, started the moment a stub of the ECS task metadata
 * endpoint on 127.0.0.1 says the model fetcher finished, reports each stage from the stub's
 * timestamps, its own load, and the time to ready, in one `startup` line and in EMF; without an
 * endpoint, or with one that does not answer, it says what it cannot know and why.
 */
let modelDir: string;
let modelSize: number;

beforeAll(async () => {
  requireServerPython();
  modelDir = await fs.mkdtemp(path.join(os.tmpdir(), 'startup-'));
  await fs.copyFile(sampleModelFile(SYSTEM_PYTHON), path.join(modelDir, 'iris.joblib'));
  modelSize = (await fs.stat(path.join(modelDir, 'iris.joblib'))).size;
}, 60_000);

afterAll(async () => {
  await fs.rm(modelDir, { recursive: true, force: true });
});

/** ECS's timestamp format: RFC 3339 in UTC with nanoseconds. */
const ecsTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1456789Z');

async function metadataStub(task: object): Promise<{ uri: string; close: () => Promise<unknown> }> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/v4/abc/task') res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(task));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { uri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4/abc`, close: () => new Promise((r) => server.close(r)) };
}

function startupLines(server: ModelServerProcess): any[] {
  return server.process.output.split('\n').filter((l) => l.startsWith('{"event":"startup"')).map((l) => JSON.parse(l));
}

test('on ECS: each stage from the metadata\'s timestamps, within 10 ms, and the stages add up to the time to ready', async () => {
  const now = Date.now();
  // A long pull, as a multi-GB image's is: the time to ready is then long enough that the 100 ms
  // between the test's health polls, and a second worker's lag, stay well inside 5 %.
  const pullStarted = now - 20_000;
  const stub = await metadataStub({
    PullStartedAt: ecsTime(pullStarted),
    PullStoppedAt: ecsTime(now - 2000),
    Containers: [
      { Name: 'model-fetcher', StartedAt: ecsTime(now - 1900), FinishedAt: ecsTime(now) },
      { Name: 'server', StartedAt: ecsTime(now) },
    ],
  });
  const server = await ModelServerProcess.start({
    MODEL_DIR: modelDir, WORKERS: '2', EMF_INTERVAL_SECONDS: '60', ECS_CONTAINER_METADATA_URI_V4: stub.uri,
  });
  let measured: number;
  try {
    await server.waitForHealth(200);
    measured = (Date.now() - pullStarted) / 1000;
  } finally {
    await server.stop();
    await stub.close();
  }
  const lines = startupLines(server);
  expect(lines).toHaveLength(1); // one per task: its first worker's
  const [line] = lines;
  expect(line.image_pull_seconds).toBeCloseTo(18.0, 2);
  expect(line.model_fetch_seconds).toBeCloseTo(1.9, 2);
  expect(line.unknown).toBeUndefined();
  expect(line.model_bytes).toBe(modelSize);
  expect(line.model_fetch_mib_per_s).toBeCloseTo(modelSize / 2 ** 20 / 1.9, 1);
  expect(line.server_start_seconds).toBeGreaterThan(0);
  expect(line.model_load_seconds).toBeGreaterThan(0);
  // The stages are contiguous but for the fetcher's own container start (0.1 s in the stub).
  const sum = line.image_pull_seconds + line.model_fetch_seconds + line.server_start_seconds + line.model_load_seconds;
  expect(Math.abs(sum + 0.1 - line.time_to_ready_seconds)).toBeLessThan(0.01);
  // ...and the time to ready is what the test saw, to within 5 % (it polls /health every 100 ms).
  expect(Math.abs(line.time_to_ready_seconds - measured!) / measured!).toBeLessThan(0.05);
  expect(Math.abs(sum - measured!) / measured!).toBeLessThan(0.05);

  const emf = server.process.output.split('\n').filter((l) => l.startsWith('{"_aws"') && l.includes('TimeToReadySeconds')).map((l) => JSON.parse(l));
  expect(emf).toHaveLength(1);
  expect(emf[0]._aws.CloudWatchMetrics[0].Metrics.map((m: any) => [m.Name, m.Unit])).toEqual([
    ['ImagePullSeconds', 'Seconds'], ['ModelFetchSeconds', 'Seconds'], ['ServerStartSeconds', 'Seconds'], ['TimeToReadySeconds', 'Seconds'],
  ]);
  expect(emf[0]).toMatchObject({
    ImagePullSeconds: line.image_pull_seconds, ModelFetchSeconds: line.model_fetch_seconds, TimeToReadySeconds: line.time_to_ready_seconds,
  });
}, 60_000);

test('without a metadata endpoint (a local run), or with one that does not answer: what it knows, and what it cannot, with why', async () => {
  for (const [env, why] of [
    [{}, 'no ECS_CONTAINER_METADATA_URI_V4: not an ECS task'],
    [{ ECS_CONTAINER_METADATA_URI_V4: 'http://127.0.0.1:9/v4/gone' }, /^the task metadata endpoint did not answer: /],
  ] as const) {
    const server = await ModelServerProcess.start({ MODEL_DIR: modelDir, EMF_INTERVAL_SECONDS: '0', ...env });
    try {
      await server.waitForHealth(200);
    } finally {
      await server.stop();
    }
    const [line] = startupLines(server);
    expect(line).toEqual({
      event: 'startup',
      model_load_seconds: expect.any(Number),
      model_bytes: modelSize,
      unknown: ['image_pull_seconds', 'model_fetch_seconds', 'server_start_seconds', 'time_to_ready_seconds'],
      why: typeof why === 'string' ? why : expect.stringMatching(why),
    });
  }
}, 60_000);
