import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { errorLine, requireBuiltCli, runCli } from '../helpers/cli';
import { ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';
import { trainTestModels } from '../helpers/python-models';

/**
 * `cdk-model-serving smoke` against the real model server on 127.0.0.1 (healthy, still loading,
 * refusing a request), and against a stand-in that answers /predict in the wrong shape, which the
 * real server never does.
 */
let workDir: string;
let iris: ModelServerProcess;

beforeAll(async () => {
  requireServerPython();
  requireBuiltCli();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoke-'));
  trainTestModels(workDir);
  fs.mkdirSync(path.join(workDir, 'iris'));
  fs.copyFileSync(sampleModelFile(SYSTEM_PYTHON), path.join(workDir, 'iris', 'iris.joblib'));
  iris = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'iris') });
  await iris.waitForHealth(200);
}, 60_000);

afterAll(async () => {
  await iris?.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
});

const smoke = (...args: string[]) => runCli(['smoke', ...args], {});

describe('against the real server', () => {
  test('a healthy endpoint passes with a request built from the width /health reports', async () => {
    const result = await smoke('--url', iris.url);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^smoke test passed: ${iris.url} healthy after [0-9.]+ s; POST /predict answered 2 prediction\\(s\\) in \\d+ ms\\n$`));
  });

  test('a given single-row payload gets one prediction', async () => {
    const result = await smoke('--url', `${iris.url}/`, '--payload', '{"features": [6.7, 3.0, 5.2, 2.3]}');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('answered 1 prediction in');
  });

  test('the endpoint comes from the outputs file cdk deploy writes', async () => {
    const file = path.join(workDir, 'cdk-outputs.json');
    fs.writeFileSync(file, JSON.stringify({
      ModelServingImages: {},
      ModelServing: { ModelEndpointEndpointUrl3F1A2B4C: iris.url, ModelServiceName: 'x' },
    }));
    const result = await smoke('--outputs-file', file);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`smoke test passed: ${iris.url} healthy`);

    fs.writeFileSync(file, JSON.stringify({ A: { ModelEndpointEndpointUrl1: iris.url }, B: { ModelEndpointEndpointUrl2: iris.url } }));
    const ambiguous = await smoke('--outputs-file', file);
    expect(ambiguous.code).toBe(2);
    expect(errorLine(ambiguous)).toContain('several endpoints (A.ModelEndpointEndpointUrl1, B.ModelEndpointEndpointUrl2): choose one with --stack or --output-key');
    expect((await smoke('--outputs-file', file, '--stack', 'B')).code).toBe(0);

    const missing = await smoke('--outputs-file', file, '--stack', 'C');
    expect(missing.code).toBe(1);
    expect(errorLine(missing)).toContain("has no outputs for stack 'C'; it has: A, B");
  });

  test('a request the server refuses fails with its status and error', async () => {
    const result = await smoke('--url', iris.url, '--payload', '{"instances": [[1, 2, 3]]}');
    expect(result.code).toBe(1);
    expect(errorLine(result)).toBe(
      `cdk-model-serving smoke: POST ${iris.url}/predict answered HTTP 400: {"error":"instances[0] has 3 values, but the model expects 4"}`);
  });

  test('it waits while the model loads, then passes', async () => {
    const slow = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'slow'), LOAD_WAIT_SECONDS: '0' });
    try {
      await slow.waitForHealth(503);
      const result = await smoke('--url', slow.url, '--interval', '0.2', '--timeout', '30');
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/answered 200 after [0-9.]+ s/);
    } finally {
      await slow.stop();
    }
  }, 60_000);

  test('an endpoint that never turns healthy fails within its bound, with the last answer', async () => {
    const slow = await ModelServerProcess.start({ MODEL_DIR: path.join(workDir, 'slow'), LOAD_WAIT_SECONDS: '0' });
    try {
      await slow.waitForHealth(503); // it loads for 3 s: longer than the smoke test waits
      const result = await smoke('--url', slow.url, '--interval', '0.2', '--timeout', '1');
      expect(result.code).toBe(1);
      expect(result.seconds).toBeLessThan(5);
      expect(errorLine(result)).toBe(`cdk-model-serving smoke: ${slow.url}/health did not answer 200 within 1 s (last: HTTP 503 {"status":"loading"})`);
    } finally {
      await slow.stop();
    }
  }, 60_000);
});

test('nothing listening: it fails within its bound, naming the connection error', async () => {
  const url = `http://127.0.0.1:${await freePort()}`;
  const result = await smoke('--url', url, '--interval', '0.2', '--timeout', '1');
  expect(result.code).toBe(1);
  expect(result.seconds).toBeLessThan(5);
  expect(errorLine(result)).toMatch(/health did not answer 200 within 1 s \(last: ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:\d+\)$/);
});

describe('an endpoint that sheds load (503 with Retry-After)', () => {
  let busyFor: number;
  let server: http.Server;
  let url: string;
  let predictions: number;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","n_features":4}');
      predictions++;
      req.resume().on('end', () => (predictions <= busyFor
        ? res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error": "the server is at its limit of 2 concurrent requests; retry after 1 s"}')
        : res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions": [0, 1]}')));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('two 503s, then an answer: smoke retries after Retry-After, says so, and passes', async () => {
    [busyFor, predictions] = [2, 0];
    const result = await smoke('--url', url, '--timeout', '20');
    expect(result.code).toBe(0);
    expect(predictions).toBe(3);
    expect(result.stderr.match(/answered 503 \(\{"error": "the server is at its limit of 2 concurrent requests; retry after 1 s"\}\); retrying after 1 s/g)).toHaveLength(2);
  });

  test('503s until --timeout: it fails within its bound with the last answer', async () => {
    [busyFor, predictions] = [Infinity, 0];
    const result = await smoke('--url', url, '--timeout', '3');
    expect(result.code).toBe(1);
    expect(result.seconds).toBeLessThan(8);
    expect(errorLine(result)).toMatch(/answered HTTP 503: \{"error": "the server is at its limit/);
  });
});

describe('answers in the wrong shape', () => {
  let answer: { status: number; body: string };
  let features = 4;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end(`{"status":"ok","n_features":${features}}`);
      req.resume().on('end', () => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test.each([
    [200, '{"result": [1, 2]}', "it has no 'predictions' list"],
    [200, '{"predictions": [1]}', "'predictions' has 1 entries for 2 rows"],
    [200, '{"predictions": ["a", null]}', "'predictions' has an empty or non-finite entry"],
    [200, '{"predictions": [0, 1], "probabilities": [[0.5, 0.5], "x"]}', "'probabilities' is not 2 lists of numbers"],
    [200, '[0, 1]', 'the answer is not a JSON object'],
    [200, 'ok', 'a body that is not JSON'],
    [500, '{"error": "internal error: ValueError"}', 'answered HTTP 500: {"error": "internal error: ValueError"}'],
  ])('HTTP %d %s fails: %s', async (...[status, body, message]) => {
    answer = { status, body };
    const result = await smoke('--url', url);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').pop()).toContain(message);
  });

  test('a /health that claims a huge feature count gets no payload built for it: one line asks for --payload', async () => {
    features = 1e12;
    try {
      const result = await smoke('--url', url);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n').pop()).toMatch(/says the model takes 1000000000000 features, more than the 100000 a default payload is made for: give --payload/);
    } finally {
      features = 4;
    }
  });
});

test.each([
  [[], /give --url, or --outputs-file/],
  [['--url', 'localhost:8080'], /--url must start with http:\/\/ or https:\/\//],
  [['--url', 'http://127.0.0.1:1', '--payload', '[1, 2]'], /--payload must be a JSON object/],
])('a bad command line exits 2: %j', async (...[args, message]) => {
  const result = await smoke(...args);
  expect(result.code).toBe(2);
  expect(errorLine(result)).toMatch(message);
});
