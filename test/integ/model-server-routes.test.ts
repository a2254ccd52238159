import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { http, ModelServerProcess, postChunked } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';

/**
 * The routes a construct setting moves (ROUTE_PREFIX for a service behind a path rule,
 * HEALTH_PATH), and a 413 that every client can read, driven by Python's own http.client.
 */
const ROW = [5.1, 3.5, 1.4, 0.2];
let modelDir: string;

beforeAll(async () => {
  requireServerPython();
  modelDir = await fs.mkdtemp(path.join(os.tmpdir(), 'routes-model-'));
  await fs.copyFile(sampleModelFile(SYSTEM_PYTHON), path.join(modelDir, 'iris.joblib'));
});

afterAll(async () => {
  await fs.rm(modelDir, { recursive: true, force: true });
});

describe('with ROUTE_PREFIX and HEALTH_PATH', () => {
  let server: ModelServerProcess;

  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: modelDir, ROUTE_PREFIX: '/models/iris', HEALTH_PATH: '/ready' });
    await server.waitForHealth(200, 20_000, '/models/iris/ready');
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('every route answers below the prefix', async () => {
    expect((await http(`${server.url}/models/iris/ready`)).body).toMatchObject({ status: 'ok', n_features: 4 });
    const predicted = await http(`${server.url}/models/iris/predict`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: ROW }),
    });
    expect(predicted.status).toBe(200);
    expect(predicted.body.prediction).toBe('setosa');
    // Metrics are on their own port, which no load balancer rule reaches, and never below the prefix.
    expect((await http(`${server.metricsUrl}/metrics`)).body).toMatch(/model_server_requests_total\{method="POST",path="\/predict",status="200"\}/);
  });

  test('/metrics is not served where clients are: the API port answers 404, with or without the prefix', async () => {
    for (const p of ['/metrics', '/models/iris/metrics']) {
      const result = await http(`${server.url}${p}`);
      expect(result.status).toBe(404);
      expect(result.body.error).toBe(`no route ${p}: POST /models/iris/predict or GET /models/iris/ready`);
    }
    expect((await http(`${server.metricsUrl}/models/iris/predict`)).body.error).toBe('no route /models/iris/predict: GET /metrics');
  });

  test('the routes without the prefix, and the default health path, are 404s that name the right ones', async () => {
    for (const p of ['/predict', '/health', '/models/iris/health', '/models/iris', '/metrics']) {
      const result = await http(`${server.url}${p}`);
      expect(result.status).toBe(404);
      expect(result.body.error).toBe(`no route ${p}: POST /models/iris/predict or GET /models/iris/ready`);
    }
  });

  test('the container health check calls the same route', async () => {
    const port = new URL(server.url).port;
    const env = { PATH: process.env.PATH!, PORT: port, ROUTE_PREFIX: '/models/iris', HEALTH_PATH: '/ready' };
    const ok = await promisify(execFile)(SYSTEM_PYTHON, ['-m', 'model_server.healthcheck'], { cwd: MODEL_SERVER_DIR, env });
    expect(ok.stderr).toBe('');
    const wrong = await promisify(execFile)(SYSTEM_PYTHON, ['-m', 'model_server.healthcheck'], { cwd: MODEL_SERVER_DIR, env: { ...env, ROUTE_PREFIX: '' } })
      .catch((err) => err);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/\/ready: HTTP Error 404/);
  });
});

test('METRICS_PORT equal to PORT stops the server at start', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: modelDir, PORT: '18299', METRICS_PORT: '18299' });
  expect(await server.process.waitForExit(15_000)).toBe(2);
  expect(server.process.output).toMatch(/cannot start: METRICS_PORT must differ from PORT \(18299\)/);
}, 30_000);

test('a malformed ROUTE_PREFIX stops the server at start with the reason', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: modelDir, ROUTE_PREFIX: 'models/iris/' });
  expect(await server.process.waitForExit(15_000)).toBe(2);
  expect(server.process.output).toMatch(/cannot start: ROUTE_PREFIX must be a URL path like \/models\/iris/);
}, 30_000);

/** Python's http.client POSTs `megabytes` of JSON: it writes the whole body before it reads. */
async function pythonPost(url: string, megabytes: number): Promise<{ status?: number; body?: string; error?: string }> {
  const script = `
import http.client, json, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
row = b"[5.1, 3.5, 1.4, 0.2],"
body = b'{"instances": [' + row * (int(float(sys.argv[2]) * 2**20) // len(row)) + b"[1, 2, 3, 4]]}"
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
try:
    conn.request("POST", u.path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    print(json.dumps({"status": r.status, "body": r.read().decode()}))
except OSError as e:
    print(json.dumps({"error": type(e).__name__}))
`;
  const { stdout } = await promisify(execFile)(SYSTEM_PYTHON, ['-c', script, url, String(megabytes)], { timeout: 90_000 });
  return JSON.parse(stdout);
}

describe('a body over MAX_BODY_BYTES', () => {
  let server: ModelServerProcess;

  beforeAll(async () => {
    server = await ModelServerProcess.start({ MODEL_DIR: modelDir, MAX_BODY_BYTES: '65536', MAX_DRAIN_BYTES: String(64 * 2 ** 20) });
    await server.waitForHealth(200);
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  test('50 MB from Python\'s http.client, which writes it all before reading: the client reads the 413 JSON', async () => {
    const result = await pythonPost(`${server.url}/predict`, 50);
    expect(result).toEqual({ status: 413, body: '{"error":"request body is larger than the 65536-byte limit"}' });
    expect((await http(`${server.url}/health`)).status).toBe(200);
  }, 120_000);

  test('a chunked body over the limit is a 413 as well, and the server keeps serving', async () => {
    const result = await postChunked(`${server.url}/predict`, JSON.stringify({ instances: Array(5000).fill(ROW) }));
    expect(result.status).toBe(413);
    const ok = await http(`${server.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: ROW }) });
    expect(ok.status).toBe(200);
  });
});

test('a client that keeps sending past MAX_DRAIN_BYTES is cut off, and the server keeps serving', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: modelDir, MAX_BODY_BYTES: '65536', MAX_DRAIN_BYTES: String(2 ** 20) });
  try {
    await server.waitForHealth(200);
    const result = await pythonPost(`${server.url}/predict`, 50);
    expect(result.error).toMatch(/^(BrokenPipeError|ConnectionResetError|ConnectionAbortedError)$/);
    expect((await http(`${server.url}/health`)).status).toBe(200);
    expect(server.process.exitCode).toBeUndefined();
  } finally {
    await server.stop();
  }
}, 120_000);

test('a websocket upgrade is an ordinary request, answered 4xx whatever websocket library is importable, and the server keeps serving', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: modelDir });
  try {
    await server.waitForHealth();
    const { port } = new URL(server.url);
    const status = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(
        'GET /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'));
      socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
      socket.once('data', (chunk) => {
        resolve(chunk.toString('latin1').split('\r\n')[0]);
        socket.destroy();
      });
      socket.once('error', reject);
    });
    expect(status).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect((await http(`${server.url}/health`)).status).toBe(200);
  } finally {
    await server.stop();
  }
}, 60_000);
