import { randomBytes } from 'node:crypto';
import { MODEL_FETCHER_DIR, MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { buildImage, createVolumes, docker, dockerOk, removeRun, runArgs } from '../../scripts/docker';
import { freePort } from '../../scripts/processes';
import { readRequirements, REQUIREMENTS } from '../../scripts/python-packages';
import { ModelTask } from '../../scripts/task-containers';
import { waitForHttp } from '../../scripts/wait-for-http';
import { ensureBaseImage } from './base-images';
import { DEBIAN_PYTHON, ensurePinnedPython } from './pinned-stack';
import { PipMirror } from './pip-mirror';
import { LocalS3 } from './s3-server';

/**
 * The real images, built from the production Dockerfiles on CI's local bases, and the model task
 * run the way ECS runs it: fetcher into a volume, then the server on it, both wired from the
 * synthesized task definition.
 */
export const IMAGES = {
  fetcher: 'cdk-model-serving-test/model-fetcher:latest',
  server: 'cdk-model-serving-test/model-server:latest',
  gpuServer: 'cdk-model-serving-test/model-server-gpu:latest',
} as const;

const log = (line: string) => process.stderr.write(`${line}\n`);

export async function buildFetcherImage(): Promise<void> {
  await buildImage(IMAGES.fetcher, MODEL_FETCHER_DIR, { buildArgs: { BASE_IMAGE: await ensureBaseImage('node', log) } });
}

/** Which Python packages the CPU server image carries: requirements.txt's pins, or Debian's stand-ins. */
export type ServerStack = 'pinned' | 'debian';

/**
 * The CPU server image, built by its Dockerfile's own pip step: on a Debian bookworm base with
 * Python 3.11 and venv only, pip installs exactly requirements.txt's pins, from a mirror on
 * 127.0.0.1 of the wheels this machine's pip downloads. Where pip cannot fetch them (a machine
 * without a package index), one line says so and the image is built on Debian's stand-ins, which
 * its base carries (INSTALL_REQUIREMENTS=false). Returns which it built.
 */
export async function buildServerImage(modelVersion: string): Promise<ServerStack> {
  const pins = readRequirements(REQUIREMENTS.cpu).map((p) => `${p.name}==${p.version}`);
  const mirror = await PipMirror.start(pins).catch((err: Error) => {
    log(`container suite: pip cannot fetch requirements.txt's pins (${err.message}): the CPU server image is built on Debian's stand-ins instead`);
    return undefined;
  });
  try {
    if (mirror) {
      await buildImage(IMAGES.server, MODEL_SERVER_DIR, {
        buildArgs: { BASE_IMAGE: await ensureBaseImage('python-venv', log), PIP_INDEX_URL: mirror.url, MODEL_VERSION: modelVersion },
      });
      return 'pinned';
    }
    await buildImage(IMAGES.server, MODEL_SERVER_DIR, {
      buildArgs: { BASE_IMAGE: await ensureBaseImage('python', log), INSTALL_REQUIREMENTS: 'false', MODEL_VERSION: modelVersion },
    });
    return 'debian';
  } finally {
    await mirror?.stop();
  }
}

/** The Python that trains models for a server image of `stack`: its scikit-learn, so its pickles load there without a version warning. */
export function trainingPython(stack: ServerStack): string {
  return stack === 'pinned' ? ensurePinnedPython() : DEBIAN_PYTHON;
}

/** The GPU server image (Dockerfile.gpu): its base carries what requirements-gpu.txt pins, with PyTorch built for the CPU. */
export async function buildGpuServerImage(modelVersion: string): Promise<void> {
  await buildImage(IMAGES.gpuServer, MODEL_SERVER_DIR, {
    file: 'Dockerfile.gpu',
    buildArgs: { BASE_IMAGE: await ensureBaseImage('python-gpu', log), INSTALL_REQUIREMENTS: 'false', MODEL_VERSION: modelVersion },
  });
}

/** One task's containers and volumes, removed together. */
export class TaskRun {
  private static readonly runs: TaskRun[] = [];

  static async create(task: ModelTask): Promise<TaskRun> {
    const run = new TaskRun(task);
    TaskRun.runs.push(run);
    await createVolumes(run.id, [task.fetcher, task.server]);
    return run;
  }


  /** Removes every run's containers and volumes (afterAll). */
  static async removeAll(): Promise<void> {
    for (const run of TaskRun.runs.splice(0)) await removeRun(run.id);
  }

  readonly id = randomBytes(4).toString('hex');

  private constructor(readonly task: ModelTask) {}

  /** The fetcher exactly as the task definition runs it, pointed at the local S3 server. */
  fetch(s3: LocalS3, image: string = IMAGES.fetcher) {
    return docker(runArgs(this.task.fetcher, { runId: this.id, image, environment: s3.env() }), { timeoutMs: 120_000 });
  }

  /** What the model volume holds (`ls -A`). */
  async volumeListing(): Promise<string> {
    const result = await docker(['run', '--rm', '--network', 'none', '--mount', `type=volume,source=cdk-model-serving-${this.id}-model,target=/m`,
      '--entrypoint', 'ls', IMAGES.fetcher, '-A', '/m']);
    return result.stdout.trim();
  }

  /** Starts the server detached on a free loopback port and waits until `healthPath` answers 200. */
  async serve(image: string, healthPath = '/health', extraEnv: Record<string, string> = {}): Promise<ServerContainer> {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const id = await dockerOk(runArgs(this.task.server, {
      runId: this.id, image, detach: true,
      // On the host network: listen on loopback only, on free ports.
      environment: { HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: String(metricsPort), ...extraEnv },
    }));
    const server = new ServerContainer(id, `http://127.0.0.1:${port}`, `http://127.0.0.1:${metricsPort}`);
    await server.waitForStatus(healthPath, 200);
    return server;
  }

  /** Runs the server and returns once it has exited (it never became healthy). */
  async serveUntilExit(image: string, timeoutMs = 60_000): Promise<{ exitCode: number; logs: string }> {
    const environment = { HOST: '127.0.0.1', PORT: String(await freePort()), METRICS_PORT: String(await freePort()) };
    const id = await dockerOk(runArgs(this.task.server, { runId: this.id, image, detach: true, environment }));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const state = JSON.parse(await dockerOk(['inspect', id]))[0].State;
      if (!state.Running) {
        const logs = await docker(['logs', id]);
        return { exitCode: state.ExitCode, logs: logs.stdout + logs.stderr };
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`the server container ${id} was still running after ${timeoutMs} ms`);
  }
}

export class ServerContainer {
  constructor(readonly id: string, readonly url: string, readonly metricsUrl: string) {}

  async inspect(): Promise<any> {
    return JSON.parse(await dockerOk(['inspect', this.id]))[0];
  }

  async waitForStatus(routePath: string, status: number, timeoutMs = 90_000): Promise<void> {
    await waitForHttp(`${this.url}${routePath}`, {
      status, timeoutMs, intervalMs: 250,
      alive: async () => (await this.inspect()).State.Running,
      describe: async () => {
        const logs = await docker(['logs', this.id]);
        return `the server container's log:\n${logs.stdout}${logs.stderr}`;
      },
    });
  }

  /** Waits for the image's own HEALTHCHECK to call the container healthy. */
  async waitForDockerHealthy(timeoutMs = 90_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let status = '';
    while (Date.now() < deadline) {
      status = (await this.inspect()).State.Health?.Status;
      if (status === 'healthy') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return status;
  }

  async get(routePath: string): Promise<{ status: number; body: any }> {
    const r = await fetch(`${this.url}${routePath}`, { signal: AbortSignal.timeout(10_000) });
    const text = await r.text();
    return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  }

  async post(routePath: string, body: string, contentType = 'application/json'): Promise<{ status: number; body: any }> {
    const r = await fetch(`${this.url}${routePath}`, { method: 'POST', headers: { 'content-type': contentType }, body, signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: await r.json() };
  }
}

/** Whether `image` carries any compiler or pip, and which user it runs as. */
export async function hygiene(image: string): Promise<{ user: string; tools: string; uid: string }> {
  const inspect = JSON.parse(await dockerOk(['image', 'inspect', image]))[0];
  const out = await docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c',
    'for t in gcc cc g++ make pip pip3; do command -v $t; done; id -u']);
  const lines = out.stdout.trim().split('\n');
  process.stdout.write(`image size: ${image}: ${(inspect.Size / 2 ** 20).toFixed(0)} MiB\n`);
  return { user: inspect.Config.User, tools: lines.slice(0, -1).join(' '), uid: lines[lines.length - 1] };
}
