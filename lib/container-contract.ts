import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from './asset-paths';

/**
 * The constructs' side of the contract with the images in `assets/`: every value both sides must
 * agree on, defined once. The other side is the Dockerfiles (USER, EXPOSE, HEALTHCHECK), the
 * server's settings (assets/model-server/model_server/settings.py) and the fetcher's
 * (assets/model-fetcher/src/config.ts); test/integ/container-contract.test.ts holds them together.
 */
export class ModelContainerContract {
  /** Where the model volume is mounted in both containers. */
  public static readonly MODEL_MOUNT_PATH = '/models';
  /** The uid:gid both images run as (their Dockerfiles create it); never root. */
  public static readonly USER = '10001:10001';
  /** The port the built-in server listens on unless `containerPort` says otherwise. */
  public static readonly DEFAULT_PORT = 8080;
  /** The port of the server's Prometheus /metrics: never a load balancer target. */
  public static readonly METRICS_PORT = 9090;
  /** The name of the server container in the task definition. */
  public static readonly SERVER_CONTAINER_NAME = 'server';
  /** The name of the model fetcher (init) container in the task definition. */
  public static readonly FETCHER_CONTAINER_NAME = 'model-fetcher';
  /** The health route the built-in server answers unless `healthCheckPath` says otherwise. */
  public static readonly DEFAULT_HEALTH_PATH = '/health';
  /** The CloudWatch namespace of the server's Embedded Metric Format metrics. */
  public static readonly METRICS_NAMESPACE = 'CdkModelServing';
  /**
   * What the containers' human-readable lines say when a task cannot start serving: the
   * fetcher's one error line, the server's failure to load the model. Beside each, the container
   * writes a JSON line whose `event` is `model_start_failed`, which the start-failure alarm's
   * metric filter counts: a client can put these words in the access log, never that field.
   */
  public static readonly START_FAILURE_MARKERS = ['model-fetcher: error:', 'model failed to load'];
}

/**
 * The rules the built-in server judges its settings by, read from the server's own file
 * (assets/model-server/model_server/contract.json), so that synth refuses exactly what the server
 * would refuse at start.
 */
interface ServerRules {
  /** A URL path the server accepts as HEALTH_PATH or ROUTE_PREFIX, and what it means in words. */
  readonly urlPath: { readonly pattern: string; readonly means: string };
  /** The most MAX_CONCURRENT_REQUESTS the server takes (the least is WORKERS). */
  readonly maxConcurrentRequests: { readonly maximum: number; readonly means: string };
  /** Routes the server answers itself, which the health route may not take. */
  readonly reservedRoutes: readonly string[];
  /** The JSON line's field and value with which the fetcher and the server report that a task cannot start. */
  readonly startFailure: { readonly field: string; readonly value: string };
}

export const SERVER_RULES: ServerRules = JSON.parse(fs.readFileSync(path.join(MODEL_SERVER_DIR, 'model_server', 'contract.json'), 'utf8'));

/** Why the built-in server would refuse `healthPath` at start, or undefined when it would start. */
export function healthPathProblem(healthPath: string): string | undefined {
  if (!new RegExp(SERVER_RULES.urlPath.pattern).test(healthPath)) return `must be ${SERVER_RULES.urlPath.means}, got '${healthPath}'`;
  if (SERVER_RULES.reservedRoutes.includes(healthPath)) return `must not be '${healthPath}', which the server answers as a route of its own`;
  return undefined;
}

/** The environment variables the constructs set on the server container. */
export const SERVER_ENV = {
  port: 'PORT',
  metricsPort: 'METRICS_PORT',
  modelDir: 'MODEL_DIR',
  workers: 'WORKERS',
  gpuCount: 'GPU_COUNT',
  gracefulTimeout: 'GRACEFUL_TIMEOUT',
  healthPath: 'HEALTH_PATH',
  routePrefix: 'ROUTE_PREFIX',
  modelVersion: 'MODEL_VERSION',
  serviceName: 'SERVICE_NAME',
  emfNamespace: 'EMF_NAMESPACE',
  maxConcurrentRequests: 'MAX_CONCURRENT_REQUESTS',
} as const;

/**
 * The server variables the constructs set, and what to use instead of setting one in
 * `environment`, where it would silently override the contract (a task that never turns healthy).
 */
export const OWNED_SERVER_ENV: Record<string, string> = {
  [SERVER_ENV.port]: "set 'containerPort' instead",
  [SERVER_ENV.metricsPort]: `it is fixed at ${ModelContainerContract.METRICS_PORT}, which the task's security group and the image's EXPOSE name; drop it`,
  [SERVER_ENV.modelDir]: `the model volume is mounted at ${ModelContainerContract.MODEL_MOUNT_PATH}; drop it, and set MODEL_FILE to choose a file in it`,
  [SERVER_ENV.workers]: "it follows the task's size: set 'cpu' (Fargate) or 'gpuCount' (GPU) instead",
  [SERVER_ENV.gpuCount]: "set 'gpuCount' instead",
  [SERVER_ENV.gracefulTimeout]: "it follows 'stopTimeout': set that instead",
  [SERVER_ENV.healthPath]: "set 'healthCheckPath' instead, which the load balancer's health check calls too",
  [SERVER_ENV.routePrefix]: "set 'existingListener.pathPrefix' instead, which the listener rule routes",
  [SERVER_ENV.modelVersion]: "set 'modelVersion' instead",
  [SERVER_ENV.serviceName]: 'it names the EMF metrics the alarms and the dashboard read; drop it',
  [SERVER_ENV.emfNamespace]: `it is ${ModelContainerContract.METRICS_NAMESPACE}, which the alarms and the dashboard read; drop it`,
  [SERVER_ENV.maxConcurrentRequests]: "set 'maxConcurrentRequests' instead",
};

/** The environment variables the constructs set on the model fetcher container. */
export const FETCHER_ENV = {
  modelUri: 'MODEL_URI',
  modelDir: 'MODEL_DIR',
  sha256: 'MODEL_SHA256',
  unpack: 'MODEL_UNPACK',
  manifest: 'MODEL_MANIFEST',
  timeoutSeconds: 'MODEL_FETCH_TIMEOUT_SECONDS',
  /** Read by the AWS SDK, not by the fetcher's own configuration. */
  region: 'AWS_REGION',
} as const;
