import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, FargateModelServiceProps } from '../../lib';
import { ModelSource } from '../../lib/model/model-source';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';
import { containers, envOf, newStack } from '../helpers/stack';

/**
 * Whatever synthesizes, boots: a value both the constructs and the server judge (the health
 * route) is run through both sides. Synth accepts it if and only if the real server, started with
 * the server container's environment from the synthesized template, starts and answers its health
 * check there; a value synth refuses is one the server refuses too.
 */
let modelDir: string;

beforeAll(() => {
  requireServerPython();
  modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shared-rules-'));
  fs.copyFileSync(sampleModelFile(SYSTEM_PYTHON), path.join(modelDir, 'iris.joblib'));
});

afterAll(() => {
  if (modelDir) fs.rmSync(modelDir, { recursive: true, force: true });
});

/** The server container's environment as synth gives it, or the synth error. */
function synthesize(props: Partial<FargateModelServiceProps>): Record<string, string> | Error {
  const stack = newStack();
  try {
    new FargateModelService(stack, 'Model', {
      model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'models'), 'iris.joblib'),
      fetcherImage: ecs.ContainerImage.fromRegistry('example.com/fetcher:1'),
      ...props,
    });
  } catch (err) {
    return err as Error;
  }
  return envOf(containers(Template.fromStack(stack)).server) as Record<string, string>;
}

/**
 * Whether the real server starts with `env` (ports and the model folder are this machine's) and
 * answers `healthPath`. One worker, unless the rule being judged involves the worker count.
 */
async function serverStarts(env: Record<string, string>, healthPath: string, keepWorkers = false): Promise<{ started: boolean; output: string }> {
  const { PORT: _port, METRICS_PORT: _metrics, MODEL_DIR: _dir, WORKERS: workers, ...rest } = env;
  const server = await ModelServerProcess.start({ ...rest, MODEL_DIR: modelDir, ...(keepWorkers ? { WORKERS: workers } : {}) });
  try {
    await server.waitForHealth(200, 30_000, healthPath);
    return { started: true, output: '' };
  } catch {
    return { started: false, output: server.process.output };
  } finally {
    await server.stop();
  }
}

const HEALTH_PATHS = [
  '/health', '/healthz', '/ops/ready', '/health-check_v2.1', '/~ready', '/a:b',
  '/', '/health/', '/health?probe=1', '/he alth', 'health', '/predict', '//health', '/health#x',
];

test.each(HEALTH_PATHS)('healthCheckPath %p: synth accepts it exactly when the server starts and answers there', async (healthPath) => {
  const env = synthesize({ healthCheckPath: healthPath });
  if (env instanceof Error) {
    expect(env.message).toMatch(/^Test\/Model: invalid 'healthCheckPath': must/);
    // The same value, given to the server directly as the construct would have given it.
    const refused = synthesize({});
    const { started, output } = await serverStarts({ ...(refused as Record<string, string>), HEALTH_PATH: healthPath }, '/health');
    expect(started).toBe(false);
    expect(output).toMatch(/cannot start: HEALTH_PATH must/);
  } else {
    expect(env.HEALTH_PATH).toBe(healthPath);
    const { started, output } = await serverStarts(env, healthPath);
    expect({ started, output }).toEqual({ started: true, output: '' });
  }
}, 60_000);

test('the table holds both outcomes, so neither side is vacuous', () => {
  const outcomes = HEALTH_PATHS.map((p) => synthesize({ healthCheckPath: p }) instanceof Error);
  expect(outcomes).toContain(true);
  expect(outcomes).toContain(false);
});

test.each([
  ['PORT', "set 'containerPort' instead"],
  ['MODEL_DIR', 'the model volume is mounted at /models'],
  ['HEALTH_PATH', "set 'healthCheckPath' instead"],
  ['ROUTE_PREFIX', "set 'existingListener.pathPrefix' instead"],
  ['MODEL_VERSION', "set 'modelVersion' instead"],
  ['GPU_COUNT', "set 'gpuCount' instead"],
  ['WORKERS', "set 'cpu' (Fargate) or 'gpuCount' (GPU) instead"],
  ['METRICS_PORT', 'it is fixed at 9090'],
])('environment.%s, which the construct sets, is refused with the prop to use', (name, fix) => {
  const result = synthesize({ environment: { [name]: '9000' } });
  expect(result).toBeInstanceOf(Error);
  expect((result as Error).message).toContain(`Test/Model: invalid 'environment.${name}': is set by the construct, and would override the server's contract: `);
  expect((result as Error).message).toContain(fix);
});

test('a variable the construct does not set reaches the server', () => {
  const env = synthesize({ environment: { BATCH_MAX_ROWS: '16', LOG_LEVEL: 'debug' } }) as Record<string, string>;
  expect(env).toMatchObject({ BATCH_MAX_ROWS: '16', LOG_LEVEL: 'debug' });
});

/** maxConcurrentRequests on a 2-vCPU task, whose server runs 2 workers. */
const CONCURRENCY_CAPS = [2, 3, 100_000, 1, 0, 100_001, 2.5, -4];

test.each(CONCURRENCY_CAPS)('maxConcurrentRequests %p: synth accepts it exactly when the server starts with it', async (cap) => {
  const env = synthesize({ maxConcurrentRequests: cap, cpu: 2048, memoryLimitMiB: 4096 });
  if (env instanceof Error) {
    expect(env.message).toMatch(/^Test\/Model: invalid 'maxConcurrentRequests': must be an integer from 2 \(the task's server workers/);
    const accepted = synthesize({ cpu: 2048, memoryLimitMiB: 4096 }) as Record<string, string>;
    const { started, output } = await serverStarts({ ...accepted, MAX_CONCURRENT_REQUESTS: String(cap) }, '/health', true);
    expect(started).toBe(false);
    expect(output).toMatch(/cannot start: MAX_CONCURRENT_REQUESTS must/);
  } else {
    expect([env.WORKERS, env.MAX_CONCURRENT_REQUESTS]).toEqual(['2', String(cap)]);
    const { started, output } = await serverStarts(env, '/health', true);
    expect({ started, output }).toEqual({ started: true, output: '' });
  }
}, 60_000);

test('without maxConcurrentRequests the construct sets no MAX_CONCURRENT_REQUESTS: the server\'s default applies', () => {
  expect((synthesize({}) as Record<string, string>).MAX_CONCURRENT_REQUESTS).toBeUndefined();
});
