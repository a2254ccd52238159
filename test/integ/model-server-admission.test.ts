import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython } from '../../scripts/processes';
import { http, ModelServerProcess } from '../helpers/model-server';
import { trainTestModels } from '../helpers/python-models';

/**
 * Admission control on the real server: past its share of MAX_CONCURRENT_REQUESTS a worker
 * refuses a prediction at once with a 503, Retry-After and a JSON error, instead of queueing it;
 * /health is never refused; the refusals are counted in the Prometheus metrics, the EMF lines and
 * the access log, each alike.
 */
const CLIENTS = 32;
const PER_CLIENT = 20;
let workDir: string;

beforeAll(async () => {
  requireServerPython();
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'admission-'));
  trainTestModels(workDir);
  await fs.mkdir(path.join(workDir, 'forest'));
  await fs.copyFile(path.join(workDir, 'forest.joblib'), path.join(workDir, 'forest', 'forest.joblib'));
}, 120_000);

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

/** CLIENTS keep-alive clients, each sending PER_CLIENT predictions one after another; every answer, and /health polled meanwhile. */
async function burst(server: ModelServerProcess) {
  const answers: Array<{ status: number; body: any; retryAfter: string | null }> = [];
  let running = true;
  const health: number[] = [];
  const poller = (async () => {
    while (running) {
      health.push((await http(`${server.url}/health`)).status);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    for (let i = 0; i < PER_CLIENT; i++) {
      const r = await fetch(`${server.url}/predict`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }),
        signal: AbortSignal.timeout(10_000),
      });
      answers.push({ status: r.status, body: await r.json(), retryAfter: r.headers.get('retry-after') });
    }
  }));
  running = false;
  await poller;
  return { answers, health };
}

test('at a cap of 2, a burst of 32 clients gets 200s and immediate 503s with Retry-After, nothing else; /health always 200; every count agrees', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1', MAX_CONCURRENT_REQUESTS: '2', EMF_INTERVAL_SECONDS: '1', LOAD_INTERVAL_SECONDS: '1' });
  await server.waitForHealth(200);
  let shed: Array<{ status: number; body: any; retryAfter: string | null }>;
  try {
    const { answers, health } = await burst(server);
    expect(answers).toHaveLength(CLIENTS * PER_CLIENT);
    expect([...new Set(answers.map((a) => a.status))].sort()).toEqual([200, 503]);
    shed = answers.filter((a) => a.status === 503);
    for (const a of shed) {
      expect(a).toEqual({ status: 503, retryAfter: '1', body: { error: 'the server is at its limit of 2 concurrent requests; retry after 1 s' } });
    }
    expect(answers.filter((a) => a.status === 200).every((a) => a.body.prediction !== undefined)).toBe(true);
    expect(health.length).toBeGreaterThan(0);
    expect(health.every((s) => s === 200)).toBe(true);
    const metrics = await (await fetch(`${server.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    expect(metrics).toContain(`model_server_requests_shed_total ${shed.length}.0`);
    expect(metrics).toMatch(new RegExp(`model_server_requests_total\\{method="POST",path="/predict",status="503"\\} ${shed.length}\\.0`));
  } finally {
    await server.stop();
  }
  const lines = server.process.output.split('\n');
  expect(lines.filter((l) => l.startsWith('{"time"') && l.includes('"shed":true') && l.includes('"status":503'))).toHaveLength(shed!.length);
  const emf = lines.filter((l) => l.startsWith('{"_aws"')).map((l) => JSON.parse(l)).filter((l) => 'RequestsShed' in l);
  expect(emf.reduce((n, l) => n + l.RequestsShed, 0)).toBe(shed!.length);
  // The high-resolution load samples: never more than the cap held at once, and the cap reached.
  const held = lines.filter((l) => l.startsWith('{"_aws"')).map((l) => JSON.parse(l)).flatMap((l) => l.ConcurrentRequests ?? []);
  expect(Math.max(...held)).toBe(2);
}, 120_000);

test('by default the cap is two micro-batches per worker: the same burst is served whole', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1' });
  await server.waitForHealth(200);
  try {
    const { answers } = await burst(server);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
  } finally {
    await server.stop();
  }
}, 120_000);

test.each([
  ['below WORKERS', { WORKERS: '2', MAX_CONCURRENT_REQUESTS: '1' }, 'MAX_CONCURRENT_REQUESTS must be from WORKERS (2), so that every worker admits one request, to 100000, got 1'],
  ['zero', { MAX_CONCURRENT_REQUESTS: '0' }, 'MAX_CONCURRENT_REQUESTS must be at least 1, got 0'],
  ['not an integer', { MAX_CONCURRENT_REQUESTS: '1.5' }, "MAX_CONCURRENT_REQUESTS must be an integer, got '1.5'"],
  ['above the limit', { MAX_CONCURRENT_REQUESTS: '100001' }, 'to 100000, got 100001'],
])('MAX_CONCURRENT_REQUESTS %s stops the server at start, saying why', async (_name, env, message) => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1', ...env });
  expect(await server.process.waitForExit(30_000)).not.toBe(0);
  expect(server.process.output).toContain(message);
}, 60_000);
