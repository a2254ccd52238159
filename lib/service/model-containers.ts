import { Annotations, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { FETCHER_ENV, ModelContainerContract, SERVER_ENV } from '../container-contract';
import { ServingImageConfig } from '../image/serving-image';
import { ModelSourceConfig } from '../model/model-source';
import { StartupBudget } from './startup-budget';

/** The server's writable scratch space on an otherwise read-only root filesystem. */
const SCRATCH_MOUNT_PATH = '/tmp';
const MODEL_VOLUME_NAME = 'model';
const SCRATCH_VOLUME_NAME = 'scratch';
/** Environment variable names that hold secrets by convention. */
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|(^|_)(PASS|PWD|AUTH|DSN|CONN|CONNECTION_STRING)(_|$)/i;
/** Values that hold a secret whatever their name: a URL with a password, an AWS access key id, a private key. */
const SECRET_VALUES: Array<[RegExp, string]> = [
  [/^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i, 'a URL with a password'],
  [/\b(AKIA|ASIA)[0-9A-Z]{16}\b/, 'an AWS access key id'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
];

/** Why `name=value` looks like a secret, or undefined. */
function secretLike(name: string, value: string): string | undefined {
  if (SECRET_NAME.test(name)) return 'its name looks like a secret\'s';
  if (Token.isUnresolved(value)) return undefined;
  return SECRET_VALUES.find(([pattern]) => pattern.test(value))?.[1].replace(/^/, 'its value holds ');
}

export interface ModelContainersOptions {
  readonly model: ModelSourceConfig;
  readonly image: ServingImageConfig;
  readonly fetcherImage: ecs.ContainerImage;
  readonly containerPort: number;
  /** The server's health route, below `routePrefix`. */
  readonly healthCheckPath: string;
  /** The path prefix of every server route ('' for none). */
  readonly routePrefix: string;
  readonly environment: Record<string, string>;
  /** The model's version: /health, the logs and the metrics name it. */
  readonly modelVersion: string;
  /** The Service dimension of the server's EMF metrics. */
  readonly serviceName: string;
  readonly secrets: Record<string, ecs.Secret>;
  /** Download plus load budget: split between the fetcher and the server, and bounds the container health check's start period. */
  readonly startupTimeout: Duration;
  /** SIGTERM to SIGKILL: the server drains in-flight requests within it. */
  readonly stopTimeout: Duration;
  readonly logGroup: logs.ILogGroup;
  /** Server worker processes. */
  readonly workers: number;
  /** MAX_CONCURRENT_REQUESTS, when the service sets one. */
  readonly maxConcurrentRequests?: number;
  /** GPUs the server reserves: its worker in slot i uses GPU i % gpuCount. */
  readonly gpuCount?: number;
  /** How the model and scratch volumes are provided (Fargate task storage by default). */
  readonly volume?: Omit<ecs.Volume, 'name'>;
  /** Extra settings for the server container (GPU reservation, memory). */
  readonly serverOptions?: Partial<ecs.ContainerDefinitionOptions>;
}

export interface ModelContainers {
  readonly fetcher: ecs.ContainerDefinition;
  readonly server: ecs.ContainerDefinition;
}

/**
 * Adds the two containers every model task has, wired the same way on Fargate and on EC2:
 *
 * - the model fetcher, a non-essential init container, writes the model into a task volume;
 * - the server starts only once the fetcher exits 0 (`SUCCESS`), mounts that volume read-only
 *   and runs on a read-only root filesystem with a small writable scratch volume.
 *
 * A fetcher that exits non-zero stops the task before the server starts, so the ECS deployment
 * circuit breaker counts it as a failed task and a bad model fails the deployment fast.
 */
export function addModelContainers(taskDefinition: ecs.TaskDefinition, options: ModelContainersOptions): ModelContainers {
  taskDefinition.addVolume({ name: MODEL_VOLUME_NAME, ...options.volume });
  taskDefinition.addVolume({ name: SCRATCH_VOLUME_NAME, ...options.volume });

  const fetcherEnvironment: Record<string, string> = {
    [FETCHER_ENV.modelUri]: options.model.uri,
    [FETCHER_ENV.modelDir]: ModelContainerContract.MODEL_MOUNT_PATH,
    [FETCHER_ENV.region]: Stack.of(taskDefinition).region,
    [FETCHER_ENV.timeoutSeconds]: String(new StartupBudget(options.startupTimeout).fetchTimeout.toSeconds()),
  };
  if (options.model.sha256) fetcherEnvironment[FETCHER_ENV.sha256] = options.model.sha256;
  if (options.model.unpack) fetcherEnvironment[FETCHER_ENV.unpack] = options.model.unpack;
  if (options.model.manifest) fetcherEnvironment[FETCHER_ENV.manifest] = JSON.stringify(options.model.manifest);

  const fetcher = taskDefinition.addContainer('ModelFetcher', {
    containerName: ModelContainerContract.FETCHER_CONTAINER_NAME,
    image: options.fetcherImage,
    essential: false,
    // A soft reservation: the download streams to disk, and EC2 tasks need one per container.
    memoryReservationMiB: 256,
    user: ModelContainerContract.USER,
    readonlyRootFilesystem: true,
    environment: fetcherEnvironment,
    logging: ecs.LogDrivers.awsLogs({ logGroup: options.logGroup, streamPrefix: ModelContainerContract.FETCHER_CONTAINER_NAME }),
  });
  fetcher.addMountPoints({ containerPath: ModelContainerContract.MODEL_MOUNT_PATH, sourceVolume: MODEL_VOLUME_NAME, readOnly: false });

  const stopSeconds = options.stopTimeout.toSeconds();
  const server = taskDefinition.addContainer('Server', {
    containerName: ModelContainerContract.SERVER_CONTAINER_NAME,
    image: options.image.image,
    essential: true,
    user: options.image.user,
    readonlyRootFilesystem: true,
    portMappings: [
      { containerPort: options.containerPort, protocol: ecs.Protocol.TCP, name: 'api' },
      { containerPort: ModelContainerContract.METRICS_PORT, protocol: ecs.Protocol.TCP, name: 'metrics' },
    ],
    environment: {
      [SERVER_ENV.port]: String(options.containerPort),
      [SERVER_ENV.metricsPort]: String(ModelContainerContract.METRICS_PORT),
      [SERVER_ENV.modelDir]: ModelContainerContract.MODEL_MOUNT_PATH,
      [SERVER_ENV.workers]: String(options.workers),
      // The server finishes in-flight requests within this, a little inside ECS's stop timeout.
      [SERVER_ENV.gracefulTimeout]: String(Math.max(1, stopSeconds - 5)),
      [SERVER_ENV.healthPath]: options.healthCheckPath,
      ...(options.routePrefix ? { [SERVER_ENV.routePrefix]: options.routePrefix } : {}),
      ...(options.gpuCount ? { [SERVER_ENV.gpuCount]: String(options.gpuCount) } : {}),
      ...(options.maxConcurrentRequests ? { [SERVER_ENV.maxConcurrentRequests]: String(options.maxConcurrentRequests) } : {}),
      [SERVER_ENV.modelVersion]: options.modelVersion,
      [SERVER_ENV.serviceName]: options.serviceName,
      [SERVER_ENV.emfNamespace]: ModelContainerContract.METRICS_NAMESPACE,
      ...options.environment,
    },
    secrets: options.secrets,
    stopTimeout: options.stopTimeout,
    healthCheck: options.image.healthCheckCommand && {
      command: options.image.healthCheckCommand,
      interval: Duration.seconds(15),
      timeout: Duration.seconds(5),
      retries: 3,
      // ECS allows at most 300 s; the service's grace period covers the rest of the budget.
      startPeriod: Duration.seconds(Math.min(300, options.startupTimeout.toSeconds())),
    },
    logging: ecs.LogDrivers.awsLogs({ logGroup: options.logGroup, streamPrefix: ModelContainerContract.SERVER_CONTAINER_NAME }),
    ...options.serverOptions,
  });
  server.addMountPoints(
    { containerPath: ModelContainerContract.MODEL_MOUNT_PATH, sourceVolume: MODEL_VOLUME_NAME, readOnly: true },
    { containerPath: SCRATCH_MOUNT_PATH, sourceVolume: SCRATCH_VOLUME_NAME, readOnly: false },
  );
  server.addContainerDependencies({ container: fetcher, condition: ecs.ContainerDependencyCondition.SUCCESS });

  // The library's own variables are non-secret configuration. A user's variable whose name or
  // value looks like a secret's is warned about, and the finding stays for cdk-nag to report.
  const flagged = Object.entries(options.environment).map(([name, value]) => [name, secretLike(name, value)] as const).filter(([, why]) => why);
  for (const [name, why] of flagged) {
    Annotations.of(taskDefinition).addWarningV2('cdk-model-serving:secretInEnvironment',
      `environment variable ${name} looks like a secret (${why}), and the task definition shows it in plain text: ` +
      "pass it in 'secrets' (ecs.Secret.fromSecretsManager or fromSsmParameter) instead");
  }
  if (flagged.length === 0) {
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds non-secret configuration only (model URI and checksum, port, paths, worker counts, and variables whose names and values do not look like secrets); secrets go in `secrets`, which ECS reads from Secrets Manager or SSM.',
    });
  }
  Validations.of(taskDefinition.obtainExecutionRole()).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'ecr:GetAuthorizationToken, which the execution role needs to pull the image from ECR, supports only Resource "*"; the image pull itself is scoped to the image\'s repository.',
  });

  return { fetcher, server };
}
