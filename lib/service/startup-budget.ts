import { Duration } from 'aws-cdk-lib';

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
