import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { emfViolations } from '../helpers/emf-spec';
import { http, ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';

/**
 * The server's CloudWatch Embedded Metric Format lines, under concurrent load on two workers:
 * every line meets the EMF specification, the counts add up to what was sent, the rate is bounded
 * by the interval, and the model version names the metrics, /health and /metrics alike.
 */
const GOOD = 1200;
const BAD = 37;
const CONCURRENCY = 24;

let modelDir: string;
let server: ModelServerProcess;
let lines: any[];
let raw: string[];
let elapsedSeconds: number;

beforeAll(async () => {
  requireServerPython();
  modelDir = await fs.mkdtemp(path.join(os.tmpdir(), 'emf-model-'));
  await fs.copyFile(sampleModelFile(SYSTEM_PYTHON), path.join(modelDir, 'iris.joblib'));
  server = await ModelServerProcess.start({
    MODEL_DIR: modelDir, WORKERS: '2', MODEL_VERSION: 'v-7f3a9c', SERVICE_NAME: 'iris-prod', EMF_INTERVAL_SECONDS: '1',
    LOAD_INTERVAL_SECONDS: '1', MAX_CONCURRENT_REQUESTS: '60', // 30 a worker: more than the 24 clients
  });
  await server.waitForHealth();
  const started = Date.now();
  const bodies = [
    ...Array.from({ length: GOOD }, (_, i) => (i % 5 === 0
      ? { instances: [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] }
      : { features: [5.1, 3.5, 1.4, 0.2] })),
    ...Array.from({ length: BAD }, () => ({ features: [1, 2] })),
  ];
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const answer = await server.predict(body);
      expect(answer.status).toBe('instances' in body || body.features.length === 4 ? 200 : 400);
    }
  }));
  elapsedSeconds = (Date.now() - started) / 1000 + 2;
  await server.stop(); // SIGTERM: each worker writes its last interval's line on the way out
  raw = server.process.output.split('\n').filter((l) => l.startsWith('{"_aws"'));
  lines = raw.map((l) => JSON.parse(l));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fs.rm(modelDir, { recursive: true, force: true });
});

test('every line meets the EMF specification', () => {
  expect(raw.length).toBeGreaterThan(2);
  for (const line of raw) expect(emfViolations(line)).toEqual([]);
});

test('the validator catches what CloudWatch would drop', () => {
  const good = JSON.parse(raw.find((l) => l.includes('ModelLatency'))!);
  const broken = [
    { ...good, ModelLatency: Array.from({ length: 101 }, () => 1) },
    { ...good, Service: 3 },
    { ...good, _aws: { ...good._aws, Timestamp: '2026-11-30' } },
    { ...good, _aws: { ...good._aws, CloudWatchMetrics: [{ ...good._aws.CloudWatchMetrics[0], Metrics: [{ Name: 'ModelLatency', Unit: 'Millis' }] }] } },
  ];
  for (const doc of broken) expect(emfViolations(JSON.stringify(doc))).not.toEqual([]);
});

test('the counts add up to the requests sent, in the service and version dimensions', () => {
  const intervals = lines.filter((l) => 'Requests' in l);
  expect(intervals.reduce((n, l) => n + l.RequestsShed, 0)).toBe(0);
  expect(intervals.reduce((n, l) => n + l.Requests, 0)).toBe(GOOD + BAD);
  expect(intervals.reduce((n, l) => n + l.RequestsRejected, 0)).toBe(BAD);
  for (const l of lines.filter((line) => !('ConcurrentRequests' in line))) {
    expect(l).toMatchObject({ Service: 'iris-prod', ModelVersion: 'v-7f3a9c' });
    expect(l._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'CdkModelServing', Dimensions: [['Service'], ['Service', 'ModelVersion']] });
  }
  const latencies = intervals.flatMap((l) => l.ModelLatency ?? []);
  const rows = intervals.flatMap((l) => l.RowsPerBatch ?? []);
  expect(latencies.length).toBeGreaterThan(0);
  expect(latencies.every((ms: number) => ms > 0 && ms < 5000)).toBe(true);
  // Micro-batching under concurrent load: some model calls served several requests' rows.
  expect(Math.max(...rows)).toBeGreaterThan(2);
});

test('the rate is bounded: one load line per worker, at most one line per worker and interval', () => {
  expect(lines.filter((l) => 'ModelLoadSeconds' in l)).toHaveLength(2);
  const intervals = lines.filter((l) => 'Requests' in l);
  expect(intervals.length).toBeLessThanOrEqual(2 * (Math.ceil(elapsedSeconds) + 1));
  for (const l of intervals) expect((l.ModelLatency ?? []).length).toBeLessThanOrEqual(100);
});

test('the load lines: high-resolution, per second, within each worker\'s share of the cap, and only while it held predictions', () => {
  const load = lines.filter((l) => 'ConcurrentRequests' in l);
  expect(load.length).toBeGreaterThan(0);
  for (const l of load) {
    expect(l._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: 'CdkModelServing',
      Dimensions: [['Service']],
      Metrics: ['ConcurrentRequests', 'QueuedRequests', 'ConcurrencyUtilization'].map((Name) => ({
        Name, Unit: Name === 'ConcurrencyUtilization' ? 'Percent' : 'Count', StorageResolution: 1,
      })),
    });
    expect(l.Service).toBe('iris-prod');
    expect([0, 1]).toContain(l.Worker); // the worker's slot: a log field, not a dimension
    // One value per second of the interval (the last line, at SIGTERM, may hold fewer).
    expect(l.ConcurrentRequests.length).toBeGreaterThanOrEqual(1);
    expect(l.ConcurrentRequests.length).toBeLessThanOrEqual(2);
    l.ConcurrentRequests.forEach((held: number, i: number) => {
      expect(held).toBeLessThanOrEqual(CONCURRENCY);
      expect(l.QueuedRequests[i]).toBeLessThanOrEqual(held);
      expect(l.ConcurrencyUtilization[i]).toBeCloseTo((100 * held) / 30, 2);
    });
    expect([...l.ConcurrentRequests, ...l.QueuedRequests].some((n: number) => n > 0)).toBe(true); // idle seconds write nothing
  }
  // 24 clients over 2 workers: some second saw several predictions held at once.
  expect(Math.max(...load.flatMap((l) => l.ConcurrentRequests))).toBeGreaterThan(2);
  expect(load.length).toBeLessThanOrEqual(2 * (Math.ceil(elapsedSeconds) + 1));
});

test('the model version is on /health and in model_info', async () => {
  const again = await ModelServerProcess.start({ MODEL_DIR: modelDir, MODEL_VERSION: 'v-7f3a9c', EMF_INTERVAL_SECONDS: '0' });
  try {
    expect((await again.waitForHealth()).body.model_version).toBe('v-7f3a9c');
    const metrics = await http(`${again.metricsUrl}/metrics`);
    expect(metrics.body).toMatch(/model_server_model_info\{loader="joblib",version="v-7f3a9c"\} 1\.0/);
    await again.predict({ features: [5.1, 3.5, 1.4, 0.2] });
    await again.stop();
    expect(again.process.output).not.toContain('"_aws"'); // EMF_INTERVAL_SECONDS=0 turns the lines off
  } finally {
    await again.stop();
  }
});
