/**
 * npm run bench:serve: the seed chapter's Flask app, exactly as printed there, against this
 * library's model server, on the same 100-tree RandomForest (iris), driven by wrk at 1, 16 and 64
 * connections on 127.0.0.1. Prints req/s, p50 and p99 side by side, with the throughput ratio.
 *
 *   BENCH_SECONDS=10 npm run bench:serve
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, requireServerPython, requireWrk, SYSTEM_PYTHON } from '../test/helpers/processes';
import { wrkPredict, WrkResult } from './wrk';

const ROOT = path.join(__dirname, '..');
const SEED_DIR = path.join(ROOT, '..', 'shared', 'baselines');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = [1, 16, 64];

interface Server {
  readonly name: string;
  readonly url: string;
  stop(): Promise<void>;
}

async function waitHealthy(url: string, child: ReturnType<typeof spawn>, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${log()}`);
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).status === 200) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server never became healthy:\n${log()}`);
}

async function start(name: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, port: number, logFile: string): Promise<Server> {
  // Output goes to a file, not a pipe: wrk runs synchronously, and a server blocked on a full
  // pipe (the seed logs every request) would measure the pipe, not the server.
  const out = fs.openSync(logFile, 'w');
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(url, child, () => fs.readFileSync(logFile, 'utf8').slice(-4000));
  return {
    name,
    url,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }),
  };
}

function measure(server: Server): Map<number, WrkResult> {
  const results = new Map<number, WrkResult>();
  wrkPredict(`${server.url}/predict`, 16, 2); // warm-up
  for (const c of CONNECTIONS) {
    results.set(c, wrkPredict(`${server.url}/predict`, c, SECONDS));
    process.stderr.write(`  ${server.name} at ${c} connection(s): ${results.get(c)!.requestsPerSecond.toFixed(0)} req/s\n`);
  }
  return results;
}

async function main(): Promise<void> {
  requireServerPython();
  requireWrk();
  if (!fs.existsSync(path.join(SEED_DIR, 'seed_app.py'))) throw new Error(`${SEED_DIR}/seed_app.py is missing: the baseline lives in ../shared/baselines`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'));
  const modelDir = path.join(work, 'model');
  fs.mkdirSync(modelDir);
  const model = path.join(modelDir, 'forest.joblib');
  execFileSync(SYSTEM_PYTHON, ['-c', `
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
joblib.dump(RandomForestClassifier(n_estimators=100, random_state=42).fit(X, y), sys.argv[1])
`, model]);

  const env = { PATH: process.env.PATH! };
  const rows: Array<[string, Map<number, WrkResult>]> = [];
  const seedPort = await freePort();
  // The chapter's app, run from its own folder, exactly as printed (Flask's development server).
  const seed = await start('seed app', SYSTEM_PYTHON, ['seed_app.py', model, String(seedPort)], SEED_DIR, env, seedPort, path.join(work, 'seed.log'));
  try {
    rows.push(['seed app (Flask dev server)', measure(seed)]);
  } finally {
    await seed.stop();
  }
  const port = await freePort();
  const ours = await start('model server', SYSTEM_PYTHON, ['-m', 'model_server'], path.join(ROOT, 'assets', 'model-server'),
    { ...env, HOST: '127.0.0.1', PORT: String(port), MODEL_DIR: modelDir }, port, path.join(work, 'server.log'));
  try {
    rows.push(['model server (gunicorn, micro-batching)', measure(ours)]);
  } finally {
    await ours.stop();
  }
  fs.rmSync(work, { recursive: true, force: true });

  console.log(`\nbench:serve: 100-tree RandomForest (iris), single-row POST /predict, wrk ${SECONDS} s per run, ${os.cpus().length} CPUs\n`);
  console.log(['server'.padEnd(42), 'conns', 'req/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'errors'.padStart(7)].join('  '));
  for (const [name, results] of rows) {
    for (const [c, r] of results) {
      console.log([name.padEnd(42), String(c).padStart(5), r.requestsPerSecond.toFixed(0).padStart(9), r.p50Ms.toFixed(1).padStart(8),
        r.p99Ms.toFixed(1).padStart(8), String(r.non2xx + r.socketErrors).padStart(7)].join('  '));
    }
  }
  const [seedRows, ourRows] = [rows[0][1], rows[1][1]];
  console.log('\nthroughput ratio (model server / seed app):');
  for (const c of CONNECTIONS) {
    const ratio = ourRows.get(c)!.requestsPerSecond / seedRows.get(c)!.requestsPerSecond;
    console.log(`  ${String(c).padStart(2)} connection(s): ${ratio.toFixed(1)}x   (p99 ${ourRows.get(c)!.p99Ms.toFixed(1)} ms vs ${seedRows.get(c)!.p99Ms.toFixed(1)} ms)`);
  }
  const at16 = ourRows.get(16)!;
  const ratio16 = at16.requestsPerSecond / seedRows.get(16)!.requestsPerSecond;
  const met = ratio16 >= 10 && at16.p99Ms <= 30 && at16.non2xx + at16.socketErrors === 0;
  console.log(`\ntarget at 16 connections (>= 10x the seed, p99 <= 30 ms, no errors): ${met ? 'met' : 'NOT met'} (${ratio16.toFixed(1)}x, p99 ${at16.p99Ms.toFixed(1)} ms)`);
}

main().catch((err) => {
  console.error(`bench:serve: ${err.message}`);
  process.exit(1);
});
