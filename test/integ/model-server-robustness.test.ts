import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { treeRssKiB } from '../../scripts/process-memory';
import { requireServerPython, requireWrk, SYSTEM_PYTHON } from '../../scripts/processes';
import { http, ModelServerProcess } from '../helpers/model-server';
import { debianStackOnlyTest, onPinnedStack } from '../helpers/pinned-stack';
import { sklearnPredictions, trainRobustnessModels, trainTestModels } from '../helpers/python-models';

/** How long the load test runs (the issue asks for 60 s; shorten locally with LOAD_SECONDS). */
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
let workDir: string;

beforeAll(async () => {
  requireServerPython();
  requireWrk();
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'server-robustness-'));
  trainTestModels(workDir);
  trainRobustnessModels(workDir);
  await fs.mkdir(path.join(workDir, 'forest'));
  await fs.copyFile(path.join(workDir, 'forest.joblib'), path.join(workDir, 'forest', 'forest.joblib'));
}, 120_000);

afterAll(async () => {
  await fs.rm(workDir, { recursive: true, force: true });
});

/** A metric's value from /metrics text (sum over label sets matching `labels`). */
function metric(text: string, name: string, labels = ''): number {
  return text.split('\n')
    .filter((l) => l.startsWith(name) && l.includes(labels) && !l.startsWith('#'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('under load, with micro-batching', () => {
  let server: ModelServerProcess;

  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '2' });
    await server.waitForHealth(200);
    // Both workers must have loaded before the measurements start.
    await new Promise((r) => setTimeout(r, 1500));
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('concurrent requests batched together each get their own row\'s answer', async () => {
    const rows = Array.from({ length: 96 }, (_, i) => [4.3 + (i % 36) / 10, 2 + (i % 24) / 10, 1 + (i % 59) / 10, 0.1 + (i % 25) / 10]);
    const expected = sklearnPredictions(path.join(workDir, 'forest.joblib'), rows);
    const before = await http(`${server.metricsUrl}/metrics`);
    const results = await Promise.all(rows.map((features) => server.predict({ features })));
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body.prediction).toBe(expected.labels[i]);
      expect(r.body.probability).toEqual(expected.probabilities![i]);
    });
    const after = (await http(`${server.metricsUrl}/metrics`)).body as string;
    const calls = metric(after, 'model_server_batch_requests_count') - metric(before.body, 'model_server_batch_requests_count');
    const served = metric(after, 'model_server_batch_requests_sum') - metric(before.body, 'model_server_batch_requests_sum');
    expect(served).toBe(96);
    expect(calls).toBeLessThan(96); // some calls served several requests
  });

  test(`${LOAD_SECONDS} s at 64 connections, good and bad requests mixed: no 5xx, /health stays 200, memory stable`, async () => {
    const script = path.join(workDir, 'mixed.lua');
    await fs.writeFile(script, `
local bodies = {
  {'{"features": [5.1, 3.5, 1.4, 0.2]}', 'application/json'},
  {'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}', 'application/json'},
  {'{"features": [5.1, 3.5]}', 'application/json'},
  {'{"features": [NaN, 3.5, 1.4, 0.2]}', 'application/json'},
  {'{"features": [5.1, "x", 1.4, 0.2]}', 'application/json'},
  {'{"instances": [[1, 2, 3, 4], [1, 2]]}', 'application/json'},
  {'{"features": [5.1, 3.5', 'application/json'},
  {'{"features": [5.1, 3.5, 1.4, 0.2]}', 'text/plain'},
}
local i = 0
c2, c4, c5 = 0, 0, 0
request = function()
  i = i + 1
  local b = bodies[(i % #bodies) + 1]
  return wrk.format("POST", "/predict", {["Content-Type"] = b[2]}, b[1])
end
response = function(status)
  if status >= 500 then c5 = c5 + 1 elseif status >= 400 then c4 = c4 + 1 else c2 = c2 + 1 end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function()
  local t2, t4, t5 = 0, 0, 0
  for _, t in ipairs(threads) do t2 = t2 + t:get("c2"); t4 = t4 + t:get("c4"); t5 = t5 + t:get("c5") end
  io.write(string.format("STATUS 2xx=%d 4xx=%d 5xx=%d\\n", t2, t4, t5))
end
`);
    // Warm up, then take the memory baseline.
    execFileSync('wrk', ['-t2', '-c64', '-d3s', '-s', script, `${server.url}/predict`], { stdio: 'pipe' });
    const rssBefore = treeRssKiB(server.process.child.pid!);

    const healthStatuses: number[] = [];
    let loading = true;
    const poller = (async () => {
      while (loading) {
        healthStatuses.push((await http(`${server.url}/health`)).status);
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const out = await new Promise<string>((resolve, reject) => {
      execFile('wrk', ['-t2', '-c64', `-d${LOAD_SECONDS}s`, '--timeout', '5s', '-s', script, `${server.url}/predict`],
        { timeout: (LOAD_SECONDS + 30) * 1000 }, (err: Error | null, stdout: string) => (err ? reject(err) : resolve(stdout)));
    });
    loading = false;
    await poller;
    const rssAfter = treeRssKiB(server.process.child.pid!);

    const [, ok, bad, errors] = /STATUS 2xx=(\d+) 4xx=(\d+) 5xx=(\d+)/.exec(out)!.map(Number);
    expect(errors).toBe(0);
    expect(ok).toBeGreaterThan(LOAD_SECONDS * 100);
    expect(bad).toBeGreaterThan(LOAD_SECONDS * 100);
    expect(out).not.toMatch(/Socket errors/);
    expect(healthStatuses.length).toBeGreaterThanOrEqual(LOAD_SECONDS / 2); // polled about once a second
    expect(new Set(healthStatuses)).toEqual(new Set([200]));
    // Stable memory: no growth with the request count (a leak of even 1 KiB per request would show).
    expect(rssAfter - rssBefore).toBeLessThan(30 * 1024);
    expect(server.process.exitCode).toBeUndefined();
  }, (LOAD_SECONDS + 60) * 1000);

  test('/metrics reports requests by status, latency and batch sizes across both workers', async () => {
    const text = (await http(`${server.metricsUrl}/metrics`)).body as string;
    expect(metric(text, 'model_server_requests_total', 'path="/predict",status="200"')).toBeGreaterThan(100);
    expect(metric(text, 'model_server_requests_total', 'status="400"')).toBeGreaterThan(100);
    expect(metric(text, 'model_server_requests_total', 'status="415"')).toBeGreaterThan(10);
    expect(metric(text, 'model_server_request_duration_seconds_count', 'path="/predict"')).toBeGreaterThan(100);
    expect(text).toMatch(/model_server_batch_rows_bucket\{le="64.0"\}/);
  });

  test('one JSON access-log line per request', () => {
    const lines = server.process.output.split('\n').filter((l) => l.startsWith('{"time"'));
    expect(lines.length).toBeGreaterThan(1000);
    const entry = JSON.parse(lines.find((l) => l.includes('"/predict"'))!);
    expect(entry).toMatchObject({ method: 'POST', path: '/predict', remote: '127.0.0.1' });
    expect(typeof entry.duration_ms).toBe('number');
    expect([200, 400, 415]).toContain(entry.status);
  });
});

test('with BATCHING=false every request is served by its own call', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), BATCHING: 'false' });
  try {
    await server.waitForHealth(200);
    const results = await Promise.all(Array.from({ length: 20 }, () => server.predict({ features: [5.1, 3.5, 1.4, 0.2] })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(metric((await http(`${server.metricsUrl}/metrics`)).body, 'model_server_batch_requests_count')).toBe(0);
    expect(server.process.output).toMatch(/batching=off/);
  } finally {
    await server.stop();
  }
}, 30_000);

/** A raw client on 127.0.0.1: what it was sent back, and when the server closed it (ms after `t0`). */
interface RawClient {
  readonly socket: net.Socket;
  received: string;
  closedAtMs?: number;
}

function rawClient(port: number, t0: number, first?: string): RawClient {
  const client: RawClient = { socket: net.connect(port, '127.0.0.1'), received: '' };
  client.socket.on('data', (d) => (client.received += d));
  client.socket.on('close', () => (client.closedAtMs = Date.now() - t0));
  client.socket.on('error', () => undefined);
  if (first) client.socket.write(first);
  return client;
}

test('64 clients trickling bodies, 8 trickling headers and 64 sending nothing cannot slow one worker; the tricklers get a 408 at REQUEST_TIMEOUT', async () => {
  const timeoutS = 4;
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1', REQUEST_TIMEOUT: String(timeoutS) });
  const clients: RawClient[] = [];
  try {
    await server.waitForHealth(200);
    const port = Number(new URL(server.url).port);
    const t0 = Date.now();
    const bodies = Array.from({ length: 64 }, () => rawClient(port, t0,
      'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"features": ['));
    const headers = Array.from({ length: 8 }, () => rawClient(port, t0, 'POST /predict HTTP/1.1\r\nHost: x\r\n'));
    const idle = Array.from({ length: 64 }, () => rawClient(port, t0));
    clients.push(...bodies, ...headers, ...idle);
    const trickle = setInterval(() => {
      bodies.forEach((c) => c.socket.writable && c.socket.write('1, '));
      headers.forEach((c) => c.socket.writable && c.socket.write('X-Slow: 1\r\n'));
    }, 250);

    // While all of them are held open: the ALB's health check and real predictions, one at a time.
    const latencies: number[] = [];
    const statuses: number[] = [];
    while (Date.now() - t0 < (timeoutS - 1) * 1000) {
      for (const call of [() => http(`${server.url}/health`), () => server.predict({ features: [5.1, 3.5, 1.4, 0.2] })]) {
        const started = Date.now();
        statuses.push((await call()).status);
        latencies.push(Date.now() - started);
      }
    }
    expect(statuses.length).toBeGreaterThan(20);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(Math.max(...latencies)).toBeLessThan(250); // the ALB gives up at 5 s; each answer here takes milliseconds

    // Past the deadline every trickler has its 408 and is gone; the idle ones are closed without a word.
    await new Promise((r) => setTimeout(r, (timeoutS + 2) * 1000 - (Date.now() - t0)));
    clearInterval(trickle);
    for (const c of [...bodies, ...headers]) {
      expect(c.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*\{"error":"the request did not arrive within 4 s \(REQUEST_TIMEOUT\)"\}$/);
      expect(c.closedAtMs).toBeGreaterThanOrEqual(timeoutS * 1000 - 100);
      expect(c.closedAtMs).toBeLessThan((timeoutS + 1.5) * 1000);
    }
    for (const c of idle) {
      expect(c.received).toBe('');
      expect(c.closedAtMs).toBeDefined();
    }
    expect(server.process.output).toMatch(/its request did not arrive within 4 s/);
    expect(server.process.output).not.toMatch(/"status":500|Traceback/);
    expect((await server.predict({ features: [5.1, 3.5, 1.4, 0.2] })).status).toBe(200);
  } finally {
    clients.forEach((c) => c.socket.destroy());
    await server.stop();
  }
}, 60_000);

debianStackOnlyTest('SIGTERM lets an in-flight request finish, then the server exits 0', 'its slow model is a TorchScript one, and PyTorch is not among the CPU pins', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'slow-torch'), WORKERS: '1', GRACEFUL_TIMEOUT: '20' });
  await server.waitForHealth(200, 60_000);
  const inFlight = server.predict({ features: [1, 2, 3, 4] });
  await new Promise((r) => setTimeout(r, 500));
  server.process.child.kill('SIGTERM');
  const result = await inFlight;
  expect(result.status).toBe(200);
  expect(result.body.probability).toHaveLength(3);
  expect(await server.process.waitForExit(20_000)).toBe(0);
}, 90_000);

test('a pickle from another scikit-learn version: a clear warning by default, a refusal on request', async () => {
  const dir = path.join(workDir, 'stale');
  const warned = await ModelServerProcess.start({ MODEL_DIR: dir, HEALTH_DETAILS: 'true' });
  try {
    const health = await warned.waitForHealth(200);
    expect(health.body.version_mismatch).toMatch(/Trying to unpickle estimator|InconsistentVersion|version/);
    expect(warned.process.output).toMatch(/VERSION MISMATCH: .*forest\.joblib/);
    expect((await warned.predict({ features: [5.1, 3.5, 1.4, 0.2] })).status).toBe(200);
  } finally {
    await warned.stop();
  }
  const refused = await ModelServerProcess.start({ MODEL_DIR: dir, MODEL_VERSION_MISMATCH: 'refuse' });
  expect(await refused.process.waitForExit(20_000)).not.toBe(0);
  expect(refused.process.output).toMatch(/was pickled with another library version .* set MODEL_VERSION_MISMATCH=warn to serve it anyway/);
}, 60_000);

debianStackOnlyTest('an XGBoost model (joblib) serves xgboost\'s own predictions, and the start-up log names its version', 'XGBoost is not among the server\'s pins, and this machine\'s index has no wheel of it', async () => {
  const model = path.join(workDir, 'xgb', 'model.joblib');
  await fs.access(model).catch(() => {
    throw new Error(`${SYSTEM_PYTHON} has no xgboost: install Debian's python3-xgboost (.ci/run does this)`);
  });
  const server = await ModelServerProcess.start({ MODEL_DIR: path.dirname(model), HEALTH_DETAILS: 'true' });
  try {
    const health = await server.waitForHealth(200);
    expect(health.body).toMatchObject({ type: 'XGBClassifier' });
    expect(health.body.xgboost).toMatch(/^\d+\.\d+/);
    expect(server.process.output).toMatch(/loader=joblib .*type=XGBClassifier .*xgboost=\d/);
    const rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];
    const expected = sklearnPredictions(model, rows);
    const result = await server.predict({ instances: rows });
    expect(result.body.predictions).toEqual(expected.labels);
    result.body.probabilities.forEach((p: number[], i: number) => p.forEach((v, j) => expect(v).toBeCloseTo(expected.probabilities![i][j], 6)));
  } finally {
    await server.stop();
  }
}, 60_000);

describe('connections that would hold a worker\'s memory or sockets', () => {
  let server: ModelServerProcess;
  let port: number;
  const timeoutS = 2;
  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1', REQUEST_TIMEOUT: String(timeoutS), KEEPALIVE: '30' });
    await server.waitForHealth(200);
    port = Number(new URL(server.url).port);
  }, 60_000);
  afterAll(async () => server?.stop());

  const closed = (c: RawClient, withinMs: number) => new Promise<void>((resolve, reject) => {
    if (c.closedAtMs !== undefined) return resolve();
    const timer = setTimeout(() => reject(new Error(`still open after ${withinMs} ms; received ${JSON.stringify(c.received.slice(0, 200))}`)), withinMs);
    c.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  test('a bare CRLF every half second after a request does not keep the connection: it closes at REQUEST_TIMEOUT', async () => {
    const t0 = Date.now();
    const c = rawClient(port, t0, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const trickle = setInterval(() => c.socket.writable && c.socket.write('\r\n'), 500);
    try {
      await closed(c, (timeoutS + 3) * 1000);
    } finally {
      clearInterval(trickle);
    }
    expect(c.received).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(c.closedAtMs).toBeLessThan((timeoutS + 2) * 1000);
  }, 30_000);

  test('pipelining hundreds of requests without reading the answers closes the connection; the worker keeps serving', async () => {
    const c = rawClient(port, Date.now());
    c.socket.pause(); // never read: the answers back up
    const body = '{"features": [5.1, 3.5, 1.4, 0.2]}';
    const request = `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    for (let i = 0; i < 20 && c.socket.writable; i++) c.socket.write(request.repeat(100));
    await closed(c, (timeoutS + 5) * 1000);
    expect(server.process.output).toMatch(/pipelined more than 32 requests ahead of the answers it read|did not read its answers within 2 s/);
    expect((await server.predict({ features: [5.1, 3.5, 1.4, 0.2] })).status).toBe(200);
  }, 30_000);
});

test('an upload that stalls inside its body does not hold the other predictions to the batching window', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1', BATCH_MAX_WAIT_MS: '100', REQUEST_TIMEOUT: '30' });
  try {
    await server.waitForHealth(200);
    const port = Number(new URL(server.url).port);
    const staller = rawClient(port, Date.now(), 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"features": [5.1, ');
    await new Promise((r) => setTimeout(r, 300));
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      expect((await server.predict({ features: [5.1, 3.5, 1.4, 0.2] })).status).toBe(200);
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);
    // With the stalled upload counted as on its way, every lone request waited the full 100 ms window.
    expect(latencies[10]).toBeLessThan(50);
    staller.socket.destroy();
  } finally {
    await server.stop();
  }
}, 60_000);

/**
 * The server's own header limits (model_server/deadline_protocol.py), on both HTTP parsers: Debian's
 * older httptools (integ), whose llhttp refuses past about 80 KB by itself, and the one
 * requirements.txt pins (integ-pinned, installed by pip), which accepts any size and count.
 */
describe.each([onPinnedStack() ? 'the pinned httptools (integ-pinned)' : 'Debian\'s httptools (integ)'])('on %s', () => {
  let server: ModelServerProcess;
  let port: number;
  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'forest'), WORKERS: '1', REQUEST_TIMEOUT: '2' });
    await server.waitForHealth(200);
    port = Number(new URL(server.url).port);
  }, 360_000);
  afterAll(async () => server?.stop());

  test.each([
    ['a 1 MB header', `X-Big: ${'a'.repeat(1024 * 1024)}\r\n`],
    ['200 headers', Array.from({ length: 200 }, (_, i) => `X-H${i}: 1\r\n`).join('')],
    ['100,000 headers', 'X-H: 1\r\n'.repeat(100_000)],
    ['a 70 KB URL', ''],
  ])('%s is answered 431 and the connection closed, and /health answers at once', async (name, headers) => {
    const target = name === 'a 70 KB URL' ? `/health?${'q'.repeat(70 * 1024)}` : '/health';
    const c = rawClient(port, Date.now(), `GET ${target} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still open after 10 s; received ${JSON.stringify(c.received.slice(0, 200))}`)), 10_000);
      if (c.closedAtMs !== undefined) resolve();
      c.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    expect(c.received).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n[\s\S]*"error":"the request line and headers may hold 65536 bytes and 100 headers"/);
    const started = Date.now();
    expect((await http(`${server.url}/health`)).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1000);
  }, 30_000);
});

