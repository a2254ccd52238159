import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, run, SYSTEM_PYTHON } from '../../scripts/processes';
import { ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';

/**
 * The docs' example client (docs/examples/predict_client.py) against what a client meets: the
 * real model server shedding load, and a stand-in for the load balancer of a service waking from
 * zero tasks (503s without Retry-After, then the server).
 */
const CLIENT_DIR = path.join(__dirname, '..', '..', 'docs', 'examples');
let workDir: string;
let server: ModelServerProcess;

beforeAll(async () => {
  requireServerPython();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'client-'));
  fs.copyFileSync(sampleModelFile(SYSTEM_PYTHON), path.join(workDir, 'iris.joblib'));
  server = await ModelServerProcess.start({ MODEL_DIR: workDir, WORKERS: '1', MAX_CONCURRENT_REQUESTS: '1' });
  await server.waitForHealth(200);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
});

/** Runs `code` with the example client importable; its stdout, parsed as JSON. */
async function python(code: string): Promise<any> {
  const result = await run(SYSTEM_PYTHON, ['-c', `import json, sys\nsys.path.insert(0, ${JSON.stringify(CLIENT_DIR)})\nfrom predict_client import predict\n${code}`],
    { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`python exited ${result.code}: ${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout);
}

/** A stand-in load balancer: answers each request with the next of `script`, then forwards to the server. */
async function standIn(script: Array<{ status: number; headers?: Record<string, string>; body: string }>) {
  const seen: number[] = [];
  const lb = http.createServer((req, res) => {
    seen.push(Date.now());
    const next = script.shift();
    if (next) {
      req.resume();
      res.writeHead(next.status, next.headers ?? {}).end(next.body);
      return;
    }
    const upstream = http.request(`${server.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => lb.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(lb.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => lb.close(r)) };
}

const ALB_503 = { status: 503, headers: { 'content-type': 'text/html' }, body: '<html><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>' };

test('waking from zero: two load-balancer 503s without Retry-After are retried with backoff, a shedding 503 after its Retry-After', async () => {
  const lb = await standIn([ALB_503, ALB_503, { status: 503, headers: { 'retry-after': '1', 'content-type': 'application/json' }, body: '{"error":"busy"}' }]);
  try {
    const answer = await python(`print(json.dumps(predict(${JSON.stringify(lb.url)}, [5.1, 3.5, 1.4, 0.2])))`);
    expect(answer).toEqual({ prediction: 'setosa', probability: expect.any(Array) });
    expect(lb.seen).toHaveLength(4);
    const waits = lb.seen.slice(1).map((t, i) => (t - lb.seen[i]) / 1000);
    // Backoff 1 s then 2 s, then the Retry-After of 1 s, each with up to as much again of jitter.
    expect(waits[0]).toBeGreaterThanOrEqual(0.95);
    expect(waits[0]).toBeLessThan(2.5);
    expect(waits[1]).toBeGreaterThanOrEqual(1.95);
    expect(waits[1]).toBeLessThan(4.5);
    expect(waits[2]).toBeGreaterThanOrEqual(0.95);
    expect(waits[2]).toBeLessThan(2.5);
  } finally {
    await lb.close();
  }
}, 60_000);

test('a 503 that lasts past give_up_after raises it; a 400 raises at once', async () => {
  const lb = await standIn(Array.from({ length: 20 }, () => ALB_503));
  try {
    const outcome = await python(`
import urllib.error
try:
    predict(${JSON.stringify(lb.url)}, [5.1, 3.5, 1.4, 0.2], give_up_after=2)
    print(json.dumps("answered"))
except urllib.error.HTTPError as err:
    print(json.dumps(err.code))`);
    expect(outcome).toBe(503);
    expect(lb.seen.length).toBeLessThanOrEqual(3);
  } finally {
    await lb.close();
  }
  const bad = await python(`
import urllib.error
try:
    predict(${JSON.stringify(server.url)}, [1, 2])
except urllib.error.HTTPError as err:
    print(json.dumps([err.code, json.load(err)]))`);
  expect(bad).toEqual([400, { error: 'features has 2 values, but the model expects 4' }]);
}, 60_000);

test('against the real server at a cap of 1: 8 concurrent clients all get their prediction, some after a shed 503', async () => {
  const before = server.process.output.split('\n').filter((l) => l.includes('"shed":true')).length;
  const answers = await python(`
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(lambda i: predict(${JSON.stringify(server.url)}, [5.1, 3.5, 1.4, 0.2]), range(48)))
print(json.dumps(answers))`);
  expect(answers).toHaveLength(48);
  for (const a of answers) expect(a.prediction).toBe('setosa');
  const shed = server.process.output.split('\n').filter((l) => l.includes('"shed":true')).length - before;
  expect(shed).toBeGreaterThan(0);
}, 120_000);
