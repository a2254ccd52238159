import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { SAMPLE_GOLDEN_FILE } from '../../lib/asset-paths';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { EmulatedLoadBalancer } from '../helpers/emulated-load-balancer';
import { invokeAsLambda } from '../helpers/lambda';
import { ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';
import { LocalS3 } from '../helpers/s3-server';

/**
 * The golden-request lifecycle hook as Lambda runs it (the bundle `npm run build` makes, in a
 * Node.js process of its own), against real model servers on 127.0.0.1: the golden file comes
 * from a real S3-compatible server (s3rver), the listener and the load balancer's addresses from a
 * stub of the two AWS APIs (the one part that cannot run here). A model that agrees passes; one
 * that disagrees, one that answers 500 and one that is too slow each fail the hook, and its log
 * names every request that failed and why.
 */
const ROOT = path.join(__dirname, '..', '..');
const BUNDLE = path.join(ROOT, 'assets', 'functions', 'dist', 'golden-requests', 'index.js');
const LISTENER_ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/models/50dc6c495c0c9188/f2f7dc8efc522ab2';
const LOAD_BALANCER_ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/models/50dc6c495c0c9188';
/** What CloudFormation resolves the service's test-header secret into. */
const TEST_HEADER_VALUE = 'Qm8x2LrT9vKcY4nW7pHs1dFj6gZa3bEu5tNy0oMi';

let workDir: string;
let s3: LocalS3;
let aws: EmulatedLoadBalancer;
const servers: Record<string, ModelServerProcess> = {};

beforeAll(async () => {
  requireServerPython();
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'golden-'));
  execFileSync(SYSTEM_PYTHON, [path.join(__dirname, '..', 'helpers', 'py', 'golden_models.py'), workDir, sampleModelFile(SYSTEM_PYTHON)], { stdio: 'pipe' });
  await fs.mkdir(path.join(workDir, 'agrees'));
  await fs.copyFile(sampleModelFile(SYSTEM_PYTHON), path.join(workDir, 'agrees', 'iris.joblib'));
  s3 = await LocalS3.start();
  await s3.createBucket('cdk-assets');
  await s3.put('cdk-assets', 'golden/sample.jsonl', await fs.readFile(SAMPLE_GOLDEN_FILE));
  aws = await new EmulatedLoadBalancer().start();
  const started = await Promise.all((['agrees', 'disagrees', 'broken', 'slow'] as const).map(async (name) => {
    const server = await ModelServerProcess.start({
      MODEL_DIR: path.join(workDir, name), ROUTE_PREFIX: '/models/iris', EMF_INTERVAL_SECONDS: '0', MODEL_N_FEATURES: '4',
    });
    await server.waitForHealth(200, 60_000, '/models/iris/health');
    return [name, server] as const;
  }));
  for (const [name, server] of started) servers[name] = server;
}, 180_000);

afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  await s3?.stop();
  await aws?.stop();
  await fs.rm(workDir, { recursive: true, force: true });
});

interface HookRun {
  readonly hookStatus?: string;
  readonly log: string;
}

/** Runs the bundled hook once, with the listener on `port`, as ECS invokes it after test traffic shifted. */
async function runHook(port: number, env: Record<string, string> = {}): Promise<HookRun> {
  aws.listener = { arn: LISTENER_ARN, loadBalancerArn: LOAD_BALANCER_ARN, port, protocol: 'HTTP' };
  const event = { executionDetails: { testTrafficWeights: {}, productionTrafficWeights: {} }, lifecycleStage: 'POST_TEST_TRAFFIC_SHIFT' };
  const result = await invokeAsLambda(BUNDLE, event, {
    ...s3.env(), ...aws.env(), AWS_REGION: 'eu-west-1',
    GOLDEN_BUCKET: 'cdk-assets', GOLDEN_KEY: 'golden/sample.jsonl', LISTENER_ARN, ROUTE_PREFIX: '/models/iris',
    TEST_HEADER: 'x-model-serving-test', TEST_HEADER_VALUE: TEST_HEADER_VALUE, MAX_LATENCY_MS: '500', ...env,
  }, 90_000);
  expect(result.code).toBe(0);
  return { hookStatus: result.result?.hookStatus, log: result.stdout + result.stderr };
}

function portOf(server: ModelServerProcess): number {
  return Number(new URL(server.url).port);
}

test('a model that agrees passes: every request through the test header, below the route prefix, at the load balancer\'s addresses', async () => {
  // A recording hop in front of the server shows what the hook sends.
  const seen: Array<{ path: string; header?: string }> = [];
  const target = new URL(servers.agrees.url);
  const hop = http.createServer((req, res) => {
    seen.push({ path: req.url!, header: req.headers['x-model-serving-test'] as string | undefined });
    const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => hop.listen(0, '127.0.0.1', r));
  try {
    aws.calls.length = 0;
    const result = await runHook((hop.address() as AddressInfo).port);
    expect(result.hookStatus).toBe('SUCCEEDED');
    expect(result.log).toContain('POST_TEST_TRAFFIC_SHIFT: all 5 golden requests answered as expected by the new tasks');
    // The service's secret value, never a constant a client behind an in-VPC proxy could add.
    expect(seen).toEqual(Array.from({ length: 5 }, () => ({ path: '/models/iris/predict', header: TEST_HEADER_VALUE })));
    expect(aws.calls.map((c) => c.action)).toEqual(['DescribeListeners', 'DescribeNetworkInterfaces']);
    expect(aws.calls[1].params.get('Filter.1.Value.1')).toBe('ELB app/models/50dc6c495c0c9188');
  } finally {
    hop.closeAllConnections();
    await new Promise((r) => hop.close(r));
  }
}, 120_000);

test('a model that disagrees fails, naming each request it answered wrongly', async () => {
  const result = await runHook(portOf(servers.disagrees));
  expect(result.hookStatus).toBe('FAILED');
  expect(result.log).toContain('golden request "versicolor" failed: prediction is "setosa", expected "versicolor"');
  expect(result.log).toContain('golden request "virginica" failed: prediction is "setosa", expected "virginica"');
  expect(result.log).toContain('golden request "a batch" failed: predictions[1] is "setosa", expected "virginica"');
  expect(result.log).not.toContain('golden request "setosa" failed');
  expect(result.log).toContain('POST_TEST_TRAFFIC_SHIFT: 4 of 5 golden requests failed against the new tasks: the deployment rolls back');
}, 120_000);

test('a server that answers 500 fails, naming each request and the server\'s error', async () => {
  const result = await runHook(portOf(servers.broken));
  expect(result.hookStatus).toBe('FAILED');
  for (const name of ['setosa', 'versicolor', 'virginica', 'virginica, confidently', 'a batch']) {
    expect(result.log).toContain(`golden request "${name}" failed: answered 500: internal error`);
  }
}, 120_000);

test('a server that is too slow fails, naming each request and its latency against the bound', async () => {
  const result = await runHook(portOf(servers.slow));
  expect(result.hookStatus).toBe('FAILED');
  // The slow model answers "setosa" to everything: right for the first request, but late.
  expect(result.log).toMatch(/golden request "setosa" failed: answered in \d{3,5} ms, over the 500 ms bound/);
  expect(result.log).toMatch(/golden request "a batch" failed: answered in \d{3,5} ms, over the 500 ms bound/);
}, 120_000);

test('a golden file the hook cannot read fails the deployment rather than pass it', async () => {
  const result = await runHook(portOf(servers.agrees), { GOLDEN_KEY: 'golden/missing.jsonl' });
  expect(result.hookStatus).toBe('FAILED');
  expect(result.log).toMatch(/the golden requests could not be checked, so the deployment rolls back: NoSuchKey/);
}, 60_000);

test('without the test header\'s value the hook fails the deployment rather than send requests the test rule refuses', async () => {
  const result = await runHook(portOf(servers.agrees), { TEST_HEADER_VALUE: '' });
  expect(result.hookStatus).toBe('FAILED');
  expect(result.log).toMatch(/could not be checked, so the deployment rolls back: Error: TEST_HEADER and TEST_HEADER_VALUE must both be set/);
}, 60_000);

test('no server behind the listener fails, naming the requests that got no answer', async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const result = await runHook(port);
  expect(result.hookStatus).toBe('FAILED');
  expect(result.log).toMatch(/golden request "setosa" failed: no answer: .*ECONNREFUSED/);
}, 60_000);
