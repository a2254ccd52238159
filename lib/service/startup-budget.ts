import { Duration } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { InvalidPropError } from '../validation';

/** The least a task keeps for loading the model and passing two health checks 10 s apart. */
const MIN_LOAD_SECONDS = 30;

/**
 * How a task spends its `startupTimeout` (the service's health check grace period): the model
 * fetcher must have the model in place within the first three quarters, which leaves the last
 * quarter, and never less than 30 s, for the server to load it and for the load balancer to see
 * `/health` answer 200 twice. A download that cannot finish in its share fails with the fetcher's
 * own one-line error, rather than as a health check that never passed.
 */
export class StartupBudget {
  /** The shortest startupTimeout that leaves the fetcher 30 s as well. */
  public static readonly MIN_STARTUP_TIMEOUT = Duration.seconds(2 * MIN_LOAD_SECONDS);

  /** The fetcher's deadline, whole download and retries included (MODEL_FETCH_TIMEOUT_SECONDS). */
  public readonly fetchTimeout: Duration;

  constructor(startupTimeout: Duration) {
    const total = startupTimeout.toSeconds();
    const load = Math.max(MIN_LOAD_SECONDS, Math.ceil(total / 4));
    this.fetchTimeout = Duration.seconds(total - load);
  }
}

/**
 * The rates synth assumes for a model of known size: deliberately low floors, so that a refused
 * budget is one that cannot work, not one that might be tight. 50 MiB/s is well under what a task
 * in the bucket's region gets from S3 (the fetcher downloads in parallel byte ranges); 100 MiB/s
 * of loading covers reading the files and building the model in memory (unpickling a forest, or
 * mapping tensors).
 */
export const ASSUMED_DOWNLOAD_MIB_PER_SECOND = 50;
export const ASSUMED_LOAD_MIB_PER_SECOND = 100;

/**
 * The shortest startupTimeout for a model of `sizeBytes`: the download at the assumed rate within
 * the fetcher's three quarters, and the load at its rate plus two health checks 10 s apart (20 s)
 * within the rest (never less than 30 s), in whole minutes.
 */
export function shortestStartupTimeout(sizeBytes: number): Duration {
  const mib = sizeBytes / 2 ** 20;
  const download = mib / ASSUMED_DOWNLOAD_MIB_PER_SECOND;
  const load = mib / ASSUMED_LOAD_MIB_PER_SECOND + 20;
  const seconds = Math.max(download / 0.75, download + Math.max(MIN_LOAD_SECONDS, load), StartupBudget.MIN_STARTUP_TIMEOUT.toSeconds());
  return Duration.minutes(Math.ceil(seconds / 60));
}

/** Refuses a startupTimeout too short for a model whose size synth knows, naming what to set. */
export function checkStartupBudget(scope: IConstruct, sizeBytes: number | undefined, startupTimeout: Duration): void {
  if (sizeBytes === undefined) return;
  const shortest = shortestStartupTimeout(sizeBytes);
  if (startupTimeout.toSeconds() >= shortest.toSeconds()) return;
  const gib = (sizeBytes / 2 ** 30).toFixed(1);
  throw new InvalidPropError(scope, 'startupTimeout',
    `(${startupTimeout.toHumanString()}) is too short for a ${gib} GiB model: at ${ASSUMED_DOWNLOAD_MIB_PER_SECOND} MiB/s to download ` +
    `and ${ASSUMED_LOAD_MIB_PER_SECOND} MiB/s to load (conservative floors, see docs/constructs.md) it needs ${shortest.toHumanString()}; ` +
    `set startupTimeout: Duration.minutes(${shortest.toMinutes()}) or more`);
}
