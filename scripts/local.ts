/**
 * npm run local -- --model <file or directory> [--port 8080]
 *
 * Runs the model task on this machine exactly as ECS runs it: builds the fetcher and server
 * images from their real Dockerfiles, starts an embedded S3-compatible server on 127.0.0.1 that
 * holds the model, runs the fetcher into a volume, then the server with that volume read-only,
 * both with the task definition's environment, user and read-only root filesystem. The server
 * answers on 127.0.0.1:<port>. A stand-in for the ECS task metadata endpoint tells the server when
 * the fetcher ran, so its startup line breaks the cold start down as on ECS (the images are built
 * here, not pulled: that stage stays unknown). Ctrl-C (or SIGTERM) stops and removes everything
 * it started.
 *
 * Base images: the official ones by default. Where they cannot be pulled, LOCAL_SERVER_BASE_IMAGE
 * and LOCAL_FETCHER_BASE_IMAGE name local images to build on. With LOCAL_PIP_INDEX_URL (a PyPI
 * mirror) the server image's own pip step installs requirements.txt's pins from it, and the
 * server's base needs Python and venv only; without it, a local server base must carry Python,
 * venv and the server's Python packages.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { MODEL_FETCHER_DIR, MODEL_SERVER_DIR } from '../lib/asset-paths';
import { filesBelow } from '../lib/model/files';
import { modelFilesProblem } from '../lib/model/model-formats';
import { buildImage, createVolumes, docker, dockerOk, removeRun, requireDockerEngine, runArgs } from './docker';
import { LocalS3 } from './local-s3';
import { freePort } from './net';
import { modelTask } from './task-containers';
import { waitForHttp } from './wait-for-http';

const BUCKET = 'local-models';

class UsageError extends Error {}

interface Options {
  readonly model: string;
  readonly port: number;
}

function parseArgs(argv: string[]): Options {
  let model: string | undefined;
  let port = 8080;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--model') model = argv[++i];
    else if (arg === '--port') port = Number(argv[++i]);
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else throw new UsageError(`unknown argument '${arg}'`);
  }
  if (!model) throw new UsageError('--model is required');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be 1-65535, got '${argv[argv.indexOf('--port') + 1]}'`);
  const resolved = path.resolve(model);
  if (!fs.existsSync(resolved)) throw new UsageError(`--model ${resolved} does not exist`);
  // The same judgement synth makes of a model asset, for the CPU image this runs.
  const files = fs.statSync(resolved).isFile() ? [path.basename(resolved)] : filesBelow(resolved);
  const problem = files.length > 0 ? modelFilesProblem(files, 'cpu') : 'is an empty directory';
  if (problem) throw new UsageError(`--model ${resolved} ${problem}`);
  return { model: resolved, port };
}

/** Prefixes each line a container prints, so the two streams stay readable together. */
function prefixed(prefix: string, write: (s: string) => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) write(`${prefix} ${line}\n`);
  };
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const runId = `local-${randomBytes(3).toString('hex')}`;
  const say = (line: string) => process.stdout.write(`[local] ${line}\n`);
  let s3: LocalS3 | undefined;
  let logs: ReturnType<typeof spawn> | undefined;
  let metadata: http.Server | undefined;
  let watch: NodeJS.Timeout | undefined;
  // Set by a signal: the cleanup it started, resolving to the exit code. Every path that notices
  // it waits for it, so the process never exits while containers or volumes are being removed.
  let stopped: Promise<number> | undefined;

  const cleanup = async () => {
    clearInterval(watch);
    logs?.kill();
    metadata?.close();
    await removeRun(runId);
    await s3?.stop();
  };
  const stop = (signal: string) => {
    if (stopped) return;
    say(`${signal}: stopping and removing the containers, volumes and S3 server of this run`);
    stopped = cleanup().then(() => 0, (err) => {
      process.stderr.write(`[local] cleanup failed: ${err.message}\n`);
      return 1;
    });
    void stopped.then((code) => process.exit(code));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  try {
    await requireDockerEngine();
    const serverBase = process.env.LOCAL_SERVER_BASE_IMAGE;
    const pipIndex = process.env.LOCAL_PIP_INDEX_URL;
    say('building the model-fetcher and model-server images');
    await buildImage(`cdk-model-serving/model-fetcher:local`, MODEL_FETCHER_DIR, {
      buildArgs: { BASE_IMAGE: process.env.LOCAL_FETCHER_BASE_IMAGE },
    });
    await buildImage(`cdk-model-serving/model-server:local`, MODEL_SERVER_DIR, {
      buildArgs: {
        BASE_IMAGE: serverBase,
        PIP_INDEX_URL: pipIndex,
        INSTALL_REQUIREMENTS: serverBase && !pipIndex ? 'false' : undefined,
      },
    });

    // The embedded S3 server holds the model, as the deployed task's bucket would.
    // Never on the server's port, which is free until the server container binds it.
    s3 = await LocalS3.start([options.port]);
    await s3.createBucket(BUCKET);
    let uri: string;
    let sha256: string | undefined;
    if (fs.statSync(options.model).isFile()) {
      const key = `model/${path.basename(options.model)}`;
      const body = fs.readFileSync(options.model);
      sha256 = createHash('sha256').update(body).digest('hex');
      await s3.put(BUCKET, key, body);
      uri = `s3://${BUCKET}/${key}`;
    } else {
      const files = filesBelow(options.model);
      for (const f of files) await s3.put(BUCKET, `model/${f}`, fs.readFileSync(path.join(options.model, f)));
      uri = `s3://${BUCKET}/model/`;
    }
    say(`model ${options.model} is at ${uri} on the embedded S3 server (${s3.endpoint})`);

    const { fetcher, server } = modelTask(uri, { sha256 });
    if (stopped) return stopped;
    await createVolumes(runId, [fetcher, server]);
    const fetchStarted = new Date();
    const fetched = await docker(runArgs(fetcher, { runId, image: `cdk-model-serving/model-fetcher:local`, environment: s3.env() }), {
      timeoutMs: 600_000, onOutput: prefixed('[fetcher]', (s) => process.stdout.write(s)),
    });
    if (fetched.code !== 0) throw new Error(`the model fetcher failed (exit ${fetched.code}); the server was not started`);
    const task = { Containers: [{ Name: fetcher.name, StartedAt: fetchStarted.toISOString(), FinishedAt: new Date().toISOString() }] };
    metadata = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(task)));
    const metadataPort = await freePort();
    await new Promise<void>((resolve) => metadata!.listen(metadataPort, '127.0.0.1', resolve));

    // The metrics port too is on the host network: a free one, so a busy 9090 is no obstacle.
    const metricsPort = await freePort();
    const id = await dockerOk(runArgs(server, {
      runId, image: `cdk-model-serving/model-server:local`, detach: true, name: `cdk-model-serving-${runId}-server`,
      environment: {
        HOST: '127.0.0.1', PORT: String(options.port), METRICS_PORT: String(metricsPort),
        ECS_CONTAINER_METADATA_URI_V4: `http://127.0.0.1:${metadataPort}/v4/local`,
      },
    }));
    logs = spawn('docker', ['logs', '--follow', id], { stdio: ['ignore', 'pipe', 'pipe'] });
    const toOut = prefixed('[server]', (s) => process.stdout.write(s));
    logs.stdout!.on('data', (d) => toOut(String(d)));
    logs.stderr!.on('data', (d) => toOut(String(d)));

    const url = `http://127.0.0.1:${options.port}`;
    let exitCode: number | undefined;
    try {
      await waitForHttp(`${url}/health`, {
        timeoutMs: 120_000, intervalMs: 300,
        alive: async () => {
          const state = JSON.parse(await dockerOk(['inspect', id]))[0].State;
          if (!state.Running) exitCode = state.ExitCode;
          return !stopped && state.Running;
        },
      });
    } catch (err) {
      if (stopped) return stopped;
      if (exitCode !== undefined) throw new Error(`the server container exited with code ${exitCode}`, { cause: err });
      throw new Error('the server did not become healthy within 120 s', { cause: err });
    }
    if (stopped) return stopped;
    say(`serving at ${url}: try  curl -X POST ${url}/predict -H 'content-type: application/json' -d '{"features": [...]}'`);
    say(`Prometheus metrics at http://127.0.0.1:${metricsPort}/metrics`);
    say('Ctrl-C stops and removes everything this run started');
    // Keep running until a signal arrives or the server stops.
    await new Promise<void>((resolve) => {
      watch = setInterval(async () => {
        const state = JSON.parse((await docker(['inspect', id])).stdout || '[]')[0]?.State;
        if (!stopped && !state?.Running) {
          clearInterval(watch);
          process.stderr.write(`[local] the server container stopped (exit ${state?.ExitCode ?? 'unknown'})\n`);
          resolve();
        }
      }, 2000);
    });
    await cleanup();
    return 1;
  } catch (err) {
    if (stopped) return stopped;
    process.stderr.write(`[local] error: ${(err as Error).message}\n`);
    await cleanup();
    return err instanceof UsageError ? 2 : 1;
  }
}

main().then((code) => process.exit(code), (err) => {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message ? `[local] error: ${err.message}\n` : ''}usage: npm run local -- --model <file or directory> [--port 8080]\n`);
    process.exit(2);
  }
  process.stderr.write(`[local] error: ${err.message}\n`);
  process.exit(1);
});
