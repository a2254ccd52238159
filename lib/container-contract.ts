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
   * What the containers log when a task cannot start serving: the fetcher's one error line, the
   * server's failure to load the model. A metric filter counts them for the start-failure alarm.
   */
  public static readonly START_FAILURE_MARKERS = ['model-fetcher: error:', 'model failed to load'];
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
} as const;

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
