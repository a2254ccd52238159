/**
 * npm run bench:shed: admission control on a slow model (a 1,000-tree RandomForest), in one run.
 * The model server, one worker per core, is driven by keep-alive connections that send
 * single-row predictions one after another while /health is polled every 50 ms on a connection
 * of its own:
 *
 * - without a cap at k connections: the baseline, k requests in the task;
 * - with a cap of k (MAX_CONCURRENT_REQUESTS) at 64 connections, the clients waiting out the
 *   Retry-After of a 503 with jitter, as the docs' client does: admitted and refused requests
 *   apart (the targets);
 * - the same with clients that ignore Retry-After and resend at once (a retry storm);
 * - without a cap (the server's maximum, 100000) at 64 connections: everything queues.
 *
 * How many predictions the task held at once is read from the server's own per-second samples
 * (its high-resolution EMF lines): each worker's most, summed over the workers. A probe in a
 * process of its own (bench/probe.py) sends a prediction every 20 ms meanwhile: the answer time a
 * client sees, apart from the load generator's own queue of 64 connections.
 *
 *   BENCH_SECONDS=15 BENCH_CAP=8 npm run bench:shed
 *   BENCH_MODEL=noop npm run bench:shed    # a no-op model: what is left is the machine, not the model
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../lib/asset-paths';
import { IRIS_TRAINER } from '../scripts/iris-models';
import { freePort, requireServerPython, SYSTEM_PYTHON } from '../scripts/processes';
import { Server, start, withServer } from './servers';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
/** One worker per core, less one for the client when there are few: the client must not compete with the server for CPU. */
const WORKERS = Number(process.env.BENCH_WORKERS ?? Math.max(1, os.cpus().length - 1));
const CAP = Number(process.env.BENCH_CAP ?? 4 * WORKERS);
const CONNECTIONS = 64;
const NO_CAP = 100_000;
const MODELS: Record<string, string> = { 'slow-forest': '1,000-tree RandomForest (iris)', 'noop': 'no-op model (DummyClassifier)' };
const MODEL = process.env.BENCH_MODEL ?? 'slow-forest';
const BODY = JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] });

interface Answer { readonly status: number; readonly ms: number }

interface Run {
  readonly name: string;
  readonly honorsRetryAfter: boolean;
  readonly connections: number;
  readonly answers: Answer[];
  readonly healthMs: number[];
  /** /health answers other than 200 (none expected: /health is never refused). */
  readonly healthFailures: number;
  /** The most predictions held at once, per worker, from the server's load samples. */
  readonly workerPeaks: number[];
  /** What the probe (bench/probe.py, a process of its own) saw: each answer's status and time. */
  readonly probe: Answer[];
  /** The server's own time for each refusal (access log duration_ms): from the request reaching the app to its answer. */
  readonly refusedServerMs: number[];
  readonly seconds: number;
}

/** One request on `agent`'s keep-alive connections: its status, and the time to the end of the answer. */
function request(agent: http.Agent, url: URL, body?: string): Promise<Answer> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request(url, { method: body === undefined ? 'GET' : 'POST', agent, timeout: 30_000, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const post = (agent: http.Agent, url: URL) => request(agent, url, BODY);
const get = (agent: http.Agent, url: URL) => request(agent, url);

/** `connections` clients, each sending one prediction after another for SECONDS; /health polled meanwhile. */
async function drive(server: Server, name: string, connections: number, honorsRetryAfter: boolean, logFile: string): Promise<Run> {
  const predict = new URL(`${server.url}/predict`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const healthAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  // Every worker's model loaded: /health on 20 new connections in a row answers 200.
  for (let ok = 0, tries = 0; ok < 20; tries++) {
    if (tries > 600) throw new Error('the workers did not all load the model in time');
    const fresh = new http.Agent({ keepAlive: false });
    ok = (await get(fresh, new URL(`${server.url}/health`))).status === 200 ? ok + 1 : 0;
    if (ok === 0) await new Promise((r) => setTimeout(r, 100));
  }
  // Warm-up: every connection open, the model's code paths hot.
  await Promise.all(Array.from({ length: connections }, () => post(agent, predict)));
  const logStart = fs.statSync(logFile).size;
  const answers: Answer[] = [];
  const healthMs: number[] = [];
  let healthFailures = 0;
  const until = Date.now() + SECONDS * 1000;
  const probe = runProbe(predict, SECONDS - 1);
  const health = (async () => {
    while (Date.now() < until) {
      const h = await get(healthAgent, new URL(`${server.url}/health`));
      if (h.status !== 200) healthFailures++;
      healthMs.push(h.ms);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const clients = Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < until) {
      const answer = await post(agent, predict);
      answers.push(answer);
      // The server's Retry-After (1 s), plus up to as much again at random, as the docs' client
      // does: clients refused together do not come back together.
      if (answer.status === 503 && honorsRetryAfter) await new Promise((r) => setTimeout(r, 1000 * (1 + Math.random())));
    }
  }));
  // Awaited together: a failure in any is this run's error, and none is left unhandled.
  const [, probed] = await Promise.all([clients, probe, health]);
  agent.destroy();
  healthAgent.destroy();
  await new Promise((r) => setTimeout(r, 1500)); // the last second's load line
  const log = fs.readFileSync(logFile, 'utf8').slice(logStart);
  const byWorker = new Map<number, number>();
  for (const line of log.split('\n').filter((l) => l.startsWith('{"_aws"') && l.includes('ConcurrentRequests'))) {
    const doc = JSON.parse(line);
    byWorker.set(doc.Worker, Math.max(byWorker.get(doc.Worker) ?? 0, ...doc.ConcurrentRequests));
  }
  const refusedServerMs = log.split('\n').filter((l) => l.startsWith('{"time"') && l.includes('"shed":true')).map((l) => JSON.parse(l).duration_ms);
  return {
    name, honorsRetryAfter, connections, answers, healthMs, healthFailures, refusedServerMs,
    workerPeaks: [...byWorker.values()], probe: probed, seconds: SECONDS,
  };
}

/** bench/probe.py against `url` for `seconds`, in a process of its own. */
function runProbe(url: URL, seconds: number): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, [path.join(__dirname, 'probe.py'), url.hostname, url.port, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => code === 0
      ? resolve((JSON.parse(out) as Array<[number, number]>).map(([status, ms]) => ({ status, ms })))
      : reject(new Error(`the probe exited ${code}`)));
  });
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(r: Run) {
  const admitted = r.answers.filter((a) => a.status === 200);
  const refused = r.answers.filter((a) => a.status === 503);
  const other = r.answers.filter((a) => a.status !== 200 && a.status !== 503);
  return {
    admitted, refused, other,
    rate: admitted.length / r.seconds,
    p50: percentile(admitted.map((a) => a.ms), 50),
    p99: percentile(admitted.map((a) => a.ms), 99),
    refusedP99: percentile(refused.map((a) => a.ms), 99),
    refusedServerP99: percentile(r.refusedServerMs, 99),
    probeRefused: r.probe.filter((a) => a.status === 503).length,
    probeRefusedP99: percentile(r.probe.filter((a) => a.status === 503).map((a) => a.ms), 99),
    probeOther: r.probe.filter((a) => a.status !== 200 && a.status !== 503).length,
    healthMax: Math.max(...r.healthMs),
    held: r.workerPeaks.reduce((a, b) => a + b, 0),
  };
}

async function main(): Promise<void> {
  requireServerPython();
  if (!(MODEL in MODELS)) throw new Error(`BENCH_MODEL must be one of ${Object.keys(MODELS).join(', ')}, got '${MODEL}'`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-shed-'));
  const modelDir = path.join(work, 'model');
  fs.mkdirSync(modelDir);
  execFileSync(SYSTEM_PYTHON, [IRIS_TRAINER, MODEL, path.join(modelDir, 'model.joblib')]);
  const launch = (name: string, cap: number) => async () => {
    const port = await freePort();
    return start(name, SYSTEM_PYTHON, ['-m', 'model_server'], MODEL_SERVER_DIR, {
      PATH: process.env.PATH!, HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: String(await freePort()), MODEL_DIR: modelDir,
      WORKERS: String(WORKERS), MAX_CONCURRENT_REQUESTS: String(cap), LOAD_INTERVAL_SECONDS: '1', EMF_INTERVAL_SECONDS: '60',
    }, port, path.join(work, `${name}.log`));
  };
  const runs: Run[] = [];
  const plan = [
    ['no cap', NO_CAP, CAP, true],
    [`cap ${CAP}`, CAP, CONNECTIONS, true],
    [`cap ${CAP}, storm`, CAP, CONNECTIONS, false],
    ['no cap', NO_CAP, CONNECTIONS, true],
  ] as const;
  for (const [name, cap, connections, honors] of plan) {
    const log = path.join(work, `${runs.length}.log`);
    runs.push(await withServer(launch(String(runs.length), cap), (server) => drive(server, name, connections, honors, log)));
    process.stderr.write(`  ${name} at ${connections} connections: done\n`);
  }
  fs.rmSync(work, { recursive: true, force: true });

  const all = runs.map(summary);
  const [baseline, capped, storm, uncapped] = all;
  console.log(`\nbench:shed: ${MODELS[MODEL]}, single-row POST /predict, ${WORKERS} worker(s), ` +
    `${SECONDS} s per run, ${os.cpus().length} x ${os.cpus()[0].model.trim()} (the client shares them), ${new Date().toISOString().slice(0, 10)}\n`);
  const header = ['run'.padEnd(16), 'conns', 'ok req/s', 'ok p50', 'ok p99', 'held', '503s', '503 p99', 'in server', 'probe 503s', 'probe p99', 'other', '/health max'];
  console.log(header.join('  '));
  runs.forEach((r, i) => {
    const s = all[i];
    console.log([r.name.padEnd(16), String(r.connections).padStart(5), s.rate.toFixed(0).padStart(8), `${s.p50.toFixed(0)} ms`.padStart(6),
      `${s.p99.toFixed(0)} ms`.padStart(6), String(s.held).padStart(4), String(s.refused.length).padStart(4),
      (s.refused.length ? `${s.refusedP99.toFixed(1)} ms` : '-').padStart(7),
      (s.refused.length ? `${s.refusedServerP99.toFixed(2)} ms` : '-').padStart(9), String(s.probeRefused).padStart(10),
      (s.probeRefused ? `${s.probeRefusedP99.toFixed(1)} ms` : '-').padStart(9), String(s.other.length + s.probeOther).padStart(5), `${s.healthMax.toFixed(1)} ms`.padStart(11)].join('  '));
  });
  console.log(`\nratios to the p99 at ${CAP} connections: admitted p99 at ${CONNECTIONS} connections with the cap ${(capped.p99 / baseline.p99).toFixed(2)}, ` +
    `in the retry storm ${(storm.p99 / baseline.p99).toFixed(2)}, without the cap ${(uncapped.p99 / baseline.p99).toFixed(2)}`);
  const checks: Array<[string, boolean]> = [
    [`never more than ${CAP} requests inside the task (held: each worker's most at once, summed)`, capped.held <= CAP && storm.held <= CAP],
    [`refused requests answered with p99 <= 5 ms in the server (cap ${CAP}, ${CONNECTIONS} connections; the access log's duration)`, capped.refusedServerP99 <= 5],
    [`refused requests answered with p99 <= 5 ms at a client of its own (the probe; cap ${CAP}, ${CONNECTIONS} connections)`, capped.probeRefused > 0 && capped.probeRefusedP99 <= 5],
    [`admitted requests' p99 <= 1.5x the p99 at ${CAP} connections`, capped.p99 <= 1.5 * baseline.p99],
    ['no 5xx but the 503s of the cap', all.every((s) => s.other.length + s.probeOther === 0) && baseline.refused.length + baseline.probeRefused === 0 &&
      uncapped.refused.length + uncapped.probeRefused === 0],
    ['/health answered 200 in under 100 ms throughout', all.every((s) => s.healthMax < 100) && runs.every((r) => r.healthFailures === 0)],
  ];
  console.log('\ntargets:');
  for (const [name, met] of checks) console.log(`  ${met ? 'met    ' : 'NOT met'}  ${name}`);
}

main().catch((err) => {
  console.error(`bench:shed: ${err.message}`);
  process.exit(1);
});
