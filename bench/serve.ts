/**
 * npm run bench:serve: this library's model server against the textbook Flask app
 * (bench/textbook_flask_app.py) on Flask's development server, as the textbook runs it, and the
 * classic production recipe (the same app under gunicorn's gthread workers), all on the same
 * 100-tree RandomForest (iris), driven by wrk at 1, 16 and 64 connections on 127.0.0.1. Prints req/s, p50 and p99 side by side with the ratios, then:
 *
 * - the same server with a no-op model, so the front's cost shows apart from the model's;
 * - a soak at 64 connections with the server's resident memory sampled throughout.
 *
 *   BENCH_SECONDS=10 BENCH_SOAK_SECONDS=60 npm run bench:serve
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../lib/asset-paths';
import { IRIS_TRAINER } from '../scripts/iris-models';
import { treeRssKiB } from '../scripts/process-memory';
import { freePort, requireServerPython, requireWrk, SYSTEM_PYTHON } from '../scripts/processes';
import { Server, start, withServer } from './servers';
import { wrkPredict, WrkResult } from './wrk';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const CONNECTIONS = [1, 16, 64];
/** One worker process per core, for this server and the gunicorn recipe alike. */
const WORKERS = os.cpus().length;
/** gunicorn's usual advice for gthread: a few threads per worker. */
const GTHREAD_THREADS = 4;

function measure(server: Server, connections = CONNECTIONS): Map<number, WrkResult> {
  const results = new Map<number, WrkResult>();
  wrkPredict(`${server.url}/predict`, 16, 2); // warm-up
  for (const c of connections) {
    results.set(c, wrkPredict(`${server.url}/predict`, c, SECONDS));
    process.stderr.write(`  ${server.name} at ${c} connection(s): ${results.get(c)!.requestsPerSecond.toFixed(0)} req/s\n`);
  }
  return results;
}

function trainModels(work: string): { forest: string; noop: string } {
  const forest = path.join(work, 'forest', 'forest.joblib');
  const noop = path.join(work, 'noop', 'noop.joblib');
  fs.mkdirSync(path.dirname(forest));
  fs.mkdirSync(path.dirname(noop));
  execFileSync(SYSTEM_PYTHON, [IRIS_TRAINER, 'forest', forest]);
  execFileSync(SYSTEM_PYTHON, [IRIS_TRAINER, 'noop', noop]);
  return { forest, noop };
}

function row(name: string, c: number, r: WrkResult): string {
  return [name.padEnd(44), String(c).padStart(5), r.requestsPerSecond.toFixed(0).padStart(9), r.p50Ms.toFixed(1).padStart(8),
    r.p99Ms.toFixed(1).padStart(8), String(r.non2xx + r.socketErrors).padStart(7)].join('  ');
}

async function main(): Promise<void> {
  requireServerPython();
  requireWrk();
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', 'import flask'], { stdio: 'pipe' });
  } catch {
    throw new Error(`${SYSTEM_PYTHON} cannot import flask, which the textbook app needs: 'apt-get install -y python3-flask'`);
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'));
  const { forest, noop } = trainModels(work);
  const env = { PATH: process.env.PATH! };
  const ourServer = (name: string, modelDir: string) => async () => {
    const port = await freePort();
    return start(name, SYSTEM_PYTHON, ['-m', 'model_server'], MODEL_SERVER_DIR,
      { ...env, HOST: '127.0.0.1', PORT: String(port), MODEL_DIR: modelDir, WORKERS: String(WORKERS) }, port, path.join(work, `${name}.log`));
  };

  const rows: Array<[string, Map<number, WrkResult>]> = [];
  // The textbook app as the textbook runs it: Flask's development server.
  rows.push(['textbook Flask app (Flask dev server)', await withServer(async () => {
    const port = await freePort();
    return start('textbook app', SYSTEM_PYTHON, ['textbook_flask_app.py'], __dirname,
      { ...env, MODEL_PATH: forest, PORT: String(port) }, port, path.join(work, 'textbook.log'));
  }, measure)]);
  rows.push([`textbook app on gunicorn gthread (${WORKERS}w x ${GTHREAD_THREADS}t)`, await withServer(async () => {
    const port = await freePort();
    return start('flask+gunicorn', SYSTEM_PYTHON, ['-m', 'gunicorn', '-w', String(WORKERS), '-k', 'gthread', '--threads', String(GTHREAD_THREADS),
      '-b', `127.0.0.1:${port}`, 'textbook_flask_app:app'], __dirname, { ...env, MODEL_PATH: forest }, port, path.join(work, 'gunicorn.log'));
  }, measure)]);
  rows.push([`model server (${WORKERS} uvicorn workers, batching)`, await withServer(ourServer('model server', path.dirname(forest)), measure)]);
  const noopResult = await withServer(ourServer('no-op model', path.dirname(noop)), (s) => measure(s, [64]).get(64)!);

  // The soak: 64 connections for SOAK_SECONDS, resident memory of the server's process tree sampled.
  const soak = await withServer(ourServer('soak', path.dirname(forest)), async (s) => {
    wrkPredict(`${s.url}/predict`, 64, 5); // warm-up: allocator pools and caches reach their working size
    const samples: number[] = [treeRssKiB(s.pid)];
    const sampler = setInterval(() => samples.push(treeRssKiB(s.pid)), 5000);
    const result = await new Promise<WrkResult>((resolve) => setImmediate(() => resolve(wrkPredict(`${s.url}/predict`, 64, SOAK_SECONDS))));
    clearInterval(sampler);
    samples.push(treeRssKiB(s.pid));
    return { result, samples };
  });
  fs.rmSync(work, { recursive: true, force: true });

  console.log(`\nbench:serve: 100-tree RandomForest (iris), single-row POST /predict, wrk ${SECONDS} s per run, ` +
    `${os.cpus().length} x ${os.cpus()[0].model.trim()} (wrk shares them), ${new Date().toISOString().slice(0, 10)}\n`);
  console.log(['server'.padEnd(44), 'conns', 'req/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'errors'.padStart(7)].join('  '));
  for (const [name, results] of rows) for (const [c, r] of results) console.log(row(name, c, r));
  console.log(row('model server, no-op model (the front alone)', 64, noopResult));

  const [textbook, gunicorn, ours] = rows.map(([, r]) => r);
  console.log('\nratios (model server / textbook app, model server / textbook app on gunicorn):');
  for (const c of CONNECTIONS) {
    const o = ours.get(c)!;
    console.log(`  ${String(c).padStart(2)} connection(s): ${(o.requestsPerSecond / textbook.get(c)!.requestsPerSecond).toFixed(1)}x the textbook app, ` +
      `${(o.requestsPerSecond / gunicorn.get(c)!.requestsPerSecond).toFixed(1)}x it on gunicorn; ` +
      `p99 ${o.p99Ms.toFixed(1)} ms vs the textbook app's ${textbook.get(c)!.p99Ms.toFixed(1)} ms`);
  }
  const frontShare = ours.get(64)!.requestsPerSecond / noopResult.requestsPerSecond;
  console.log(`\nthe front alone (no-op model) answers ${noopResult.requestsPerSecond.toFixed(0)} req/s at 64 connections; with the forest the server ` +
    `keeps ${(100 * frontShare).toFixed(0)} % of that, so the model costs ${(100 * (1 - frontShare)).toFixed(0)} % of each request's time there`);

  const { result: soaked, samples } = soak;
  const growthMiB = (samples[samples.length - 1] - samples[0]) / 1024;
  console.log(`\nsoak: ${SOAK_SECONDS} s at 64 connections: ${soaked.requestsPerSecond.toFixed(0)} req/s, ${soaked.non2xx + soaked.socketErrors} errors; ` +
    `resident memory ${(samples[0] / 1024).toFixed(0)} MiB at the start, ${(Math.max(...samples) / 1024).toFixed(0)} MiB at most, ` +
    `${(samples[samples.length - 1] / 1024).toFixed(0)} MiB at the end (${growthMiB >= 0 ? '+' : ''}${growthMiB.toFixed(1)} MiB)`);

  const checks: Array<[string, boolean]> = [
    ...[16, 64].flatMap((c): Array<[string, boolean]> => [
      [`${c} connections: >= 50x the textbook app`, ours.get(c)!.requestsPerSecond >= 50 * textbook.get(c)!.requestsPerSecond],
      [`${c} connections: >= 5x the textbook app on gunicorn`, ours.get(c)!.requestsPerSecond >= 5 * gunicorn.get(c)!.requestsPerSecond],
    ]),
    ['16 connections: p99 <= 1/30 of the textbook app\'s', ours.get(16)!.p99Ms * 30 <= textbook.get(16)!.p99Ms],
    ['no errors', [...ours.values(), soaked].every((r) => r.non2xx + r.socketErrors === 0)],
    ['memory flat over the soak (< 5 % or 10 MiB growth)', growthMiB < Math.max(10, 0.05 * samples[0] / 1024)],
  ];
  console.log('\ntargets:');
  for (const [name, met] of checks) console.log(`  ${met ? 'met    ' : 'NOT met'}  ${name}`);
}

main().catch((err) => {
  console.error(`bench:serve: ${err.message}`);
  process.exit(1);
});
