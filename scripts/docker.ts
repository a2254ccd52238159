import { run, RunOptions as ProcessOptions, RunResult } from './processes';
import { ContainerSpec } from './task-containers';

/** Every container and volume these tools create carries this label, so cleanup finds them all. */
const LABEL = 'cdk-model-serving.run';

export type CommandResult = RunResult;

/** Runs `docker ...` to completion, bounded by `timeoutMs` (default two minutes). */
export async function docker(args: string[], options: ProcessOptions = {}): Promise<CommandResult> {
  try {
    return await run('docker', args, { timeoutMs: 120_000, ...options });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error("the docker CLI is not installed: 'apt-get install -y docker.io'", { cause: err });
    throw err;
  }
}

/** Like docker(), but throws with docker's own message when it fails. */
export async function dockerOk(args: string[], options: Parameters<typeof docker>[1] = {}): Promise<string> {
  const result = await docker(args, options);
  if (result.code !== 0) throw new Error(`docker ${args.slice(0, 2).join(' ')} failed: ${(result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n')}`);
  return result.stdout.trim();
}

/** Throws a clear error unless a Docker engine answers. */
export async function requireDockerEngine(): Promise<void> {
  const result = await docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 });
  if (result.code !== 0) {
    throw new Error('no Docker engine answers (docker info failed). Start one: ' +
      "'dockerd --bridge=none --iptables=false --ip6tables=false &' on this machine (.ci/run does this). " +
      (result.stderr.trim().split('\n').pop() ?? ''));
  }
}

export interface BuildOptions {
  readonly file?: string;
  readonly buildArgs?: Record<string, string | undefined>;
  readonly onOutput?: (chunk: string) => void;
}

/** docker build of a real build context, on the host network (the only one there is here). */
export async function buildImage(tag: string, context: string, options: BuildOptions = {}): Promise<void> {
  const args = ['build', '--network', 'host', '--tag', tag];
  if (options.file) args.push('--file', `${context}/${options.file}`);
  for (const [k, v] of Object.entries(options.buildArgs ?? {})) if (v !== undefined) args.push('--build-arg', `${k}=${v}`);
  await dockerOk([...args, context], { timeoutMs: 900_000, onOutput: options.onOutput });
}

export interface RunOptions {
  /** This run's id: names its volumes and labels everything it creates. */
  readonly runId: string;
  readonly image: string;
  /** Variables added to (or replacing) the task definition's. */
  readonly environment?: Record<string, string>;
  readonly detach?: boolean;
  readonly name?: string;
}

/** The volume a task volume maps to in this run (ECS creates one per task; so does this). */
function volumeName(runId: string, volume: string): string {
  return `cdk-model-serving-${runId}-${volume}`;
}

/**
 * `docker run` arguments for a container spec: its environment, user, read-only root filesystem
 * and mounts, on the host network. A container's output is its own process's.
 */
export function runArgs(spec: ContainerSpec, options: RunOptions): string[] {
  const args = ['run', '--network', 'host', '--label', `${LABEL}=${options.runId}`];
  if (options.detach) args.push('--detach');
  else args.push('--rm');
  if (options.name) args.push('--name', options.name);
  if (spec.user) args.push('--user', spec.user);
  if (spec.readOnlyRootFilesystem) args.push('--read-only');
  for (const m of spec.mounts) {
    args.push('--mount', `type=volume,source=${volumeName(options.runId, m.volume)},target=${m.path}${m.readOnly ? ',readonly' : ''}`);
  }
  for (const [k, v] of Object.entries({ ...spec.environment, ...options.environment })) args.push('--env', `${k}=${v}`);
  return [...args, options.image];
}

/** Creates the run's volumes (labelled). */
export async function createVolumes(runId: string, specs: ContainerSpec[]): Promise<void> {
  const names = new Set(specs.flatMap((s) => s.mounts.map((m) => m.volume)));
  for (const v of names) await dockerOk(['volume', 'create', '--label', `${LABEL}=${runId}`, volumeName(runId, v)]);
}

/** Removes every container and volume labelled with `runId`; throws if any remains. */
export async function removeRun(runId: string): Promise<void> {
  // A failed listing is an error, never "nothing left".
  const list = async (kind: 'ps' | 'volume') => (await dockerOk(kind === 'ps'
    ? ['ps', '-aq', '--filter', `label=${LABEL}=${runId}`]
    : ['volume', 'ls', '-q', '--filter', `label=${LABEL}=${runId}`])).split('\n').filter(Boolean);
  let lastError = '';
  for (let attempt = 0; attempt < 60; attempt++) {
    const containers = await list('ps');
    if (containers.length) lastError = (await docker(['rm', '-f', ...containers])).stderr;
    const volumes = await list('volume');
    // A volume stays "in use" for a moment after its container is removed.
    if (volumes.length) lastError = (await docker(['volume', 'rm', '-f', ...volumes])).stderr;
    if ((await list('ps')).length === 0 && (await list('volume')).length === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`could not remove the containers and volumes of run ${runId}: ${lastError.trim()}`);
}
