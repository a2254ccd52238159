import { Duration, TimeZone } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ModelContainerContract } from '../container-contract';
import { ServingImage } from '../image/serving-image';
import { ModelSource } from '../model/model-source';
import { ModelAlarmsOptions } from '../operations/model-alarms-options';
import { GoldenRequests } from '../rollout/golden-requests';
import { Rollout } from '../rollout/rollout';
import { ExistingListenerOptions } from './model-endpoint';

/** Props every model service has, whatever its compute. */
export interface ModelServiceBaseProps {
  /** The model to serve: downloaded by the task's fetcher when each task starts. */
  readonly model: ModelSource;

  /**
   * The serving image.
   * @default ServingImage.fromModelServer() (with `gpu: true` on GPU capacity)
   */
  readonly image?: ServingImage;

  /**
   * The model fetcher image (the task's init container).
   * @default - built from this library's `assets/model-fetcher`
   */
  readonly fetcherImage?: ecs.ContainerImage;

  /**
   * The VPC the tasks and the load balancer use. Leave it out when `cluster` is given: the
   * cluster's VPC is used, and giving both fails synth.
   * @default - the cluster's VPC when `cluster` is given, else a new VPC with 2 AZs, one NAT
   * gateway, an S3 gateway endpoint and flow logs
   */
  readonly vpc?: ec2.IVpc;

  /**
   * The ECS cluster.
   * @default - a new cluster with Container Insights
   */
  readonly cluster?: ecs.ICluster;

  /**
   * The subnets the tasks run in.
   * @default - the VPC's private subnets with egress
   */
  readonly taskSubnets?: ec2.SubnetSelection;

  /**
   * Whether a new load balancer is reachable from the internet. An internal one accepts
   * traffic from the VPC's CIDR only. An internet-facing one needs a `certificate`, or the
   * explicit `allowPlainHttp`.
   * @default - internet-facing with a `certificate` (or `allowPlainHttp`), internal otherwise
   */
  readonly internetFacing?: boolean;

  /**
   * A certificate for HTTPS. With one, the load balancer listens on 443 (TLS 1.3/1.2 policy)
   * and redirects HTTP on 80 to HTTPS.
   * @default - HTTP on port 80
   */
  readonly certificate?: acm.ICertificate;

  /**
   * Serve plain HTTP on an internet-facing load balancer, without a certificate. Every request's
   * features and every prediction then cross the internet unencrypted: for a trial, not for
   * production.
   * @default false
   */
  readonly allowPlainHttp?: boolean;

  /**
   * The name clients use for a new load balancer, such as `iris.ml.example.com`: an alias record
   * in `hostedZone` points it at the load balancer, and `endpointUrl` (the `EndpointUrl` output)
   * uses it, so that it matches the certificate. Needs `hostedZone`.
   * @default - clients use the load balancer's own DNS name
   */
  readonly domainName?: string;

  /**
   * The Route 53 hosted zone `domainName` is in (`route53.HostedZone.fromLookup(...)`, or one of
   * the app's own).
   * @default - none; required with `domainName`
   */
  readonly hostedZone?: route53.IHostedZone;

  /**
   * Attach to an existing load balancer's listener instead of creating a load balancer.
   * @default - a new load balancer
   */
  readonly existingListener?: ExistingListenerOptions;

  /**
   * The bucket a new load balancer writes its access logs to (it must use SSE-S3).
   * @default - a new encrypted bucket that expires logs after 90 days
   */
  readonly accessLogsBucket?: s3.IBucket;

  /**
   * The port the server listens on in the container.
   * @default 8080
   */
  readonly containerPort?: number;

  /**
   * The server's health route (below `existingListener.pathPrefix`, when there is one): the load
   * balancer's health check and the container's call it, and the built-in server answers it
   * (HEALTH_PATH). It must answer 200 only once the model is loaded. A URL path like `/healthz`:
   * segments after a `/`, no trailing `/`, no query, not `/predict`. Synth refuses any other
   * value with the server's own rule (assets/model-server/model_server/contract.json).
   * @default '/health'
   */
  readonly healthCheckPath?: string;

  /**
   * Predictions a task works on or waits for at once (MAX_CONCURRENT_REQUESTS), split evenly across
   * its server workers. Past it, a prediction is answered `503` with `Retry-After` at once instead
   * of queueing until clients time out; `/health` is never refused. An integer from the task's
   * worker count (its vCPUs on Fargate, `gpuCount` on GPU) to 100000.
   * @default - the server's: two micro-batches (2 × 64 requests) per worker
   */
  readonly maxConcurrentRequests?: number;

  /**
   * Extra environment variables for the server container: non-secret configuration only, as the
   * task definition shows them in plain text. A name or a value that looks like a secret's
   * (`API_KEY`, `DB_PASS`, `..._TOKEN`, a URL with a password, an access key id) gets a synth
   * warning, and cdk-nag's AwsSolutions-ECS2 reports it.
   * The variables the construct sets itself (`PORT`, `METRICS_PORT`, `MODEL_DIR`, `WORKERS`,
   * `GPU_COUNT`, `GRACEFUL_TIMEOUT`, `HEALTH_PATH`, `ROUTE_PREFIX`, `MODEL_VERSION`,
   * `SERVICE_NAME`, `EMF_NAMESPACE`, `MAX_CONCURRENT_REQUESTS`) are refused at synth, naming the
   * prop to set instead.
   * @default - none
   */
  readonly environment?: Record<string, string>;

  /**
   * Secrets for the server container, from Secrets Manager or SSM Parameter Store
   * (`ecs.Secret.fromSecretsManager(...)`, `ecs.Secret.fromSsmParameter(...)`). ECS injects them as
   * environment variables when the task starts; the task definition holds only their ARNs, and the
   * execution role may read exactly them.
   * @default - none
   */
  readonly secrets?: Record<string, ecs.Secret>;

  /**
   * How long a new task may take to download and load the model before health checks count:
   * the service's health check grace period, at least a minute. The model fetcher gets three
   * quarters of it for the download (MODEL_FETCH_TIMEOUT_SECONDS); the rest, and never less than
   * 30 s, is for loading the model and the first health checks. When synth knows the model's size
   * (an asset, or `sizeBytes` on a bucket source), a timeout too short to download it at 50 MiB/s
   * and load it at 100 MiB/s (conservative floors) is refused, naming the shortest that fits.
   * @default Duration.minutes(5)
   */
  readonly startupTimeout?: Duration;

  /**
   * How long the server has to finish in-flight requests after SIGTERM, before SIGKILL.
   * @default Duration.seconds(30)
   */
  readonly stopTimeout?: Duration;

  /**
   * How long the load balancer keeps sending a stopping task's in-flight requests.
   * @default Duration.seconds(30)
   */
  readonly deregistrationDelay?: Duration;

  /**
   * The fewest tasks; autoscaling never goes below it. `0` lets the service scale to zero after
   * `scaleToZeroAfter` without requests, and wake on the next one: the load balancer answers `503`
   * until a task is healthy (about two minutes on Fargate, more on GPU; see docs/scaling.md), so
   * clients must retry. Works with `Rollout.rolling()` only.
   * @default 2
   */
  readonly minCapacity?: number;

  /**
   * With `minCapacity: 0` (or a schedule's), how long the service may go without a request before
   * it scales to zero tasks: whole minutes, from 5 minutes to a day.
   * @default Duration.minutes(15)
   */
  readonly scaleToZeroAfter?: Duration;

  /**
   * Scale out within about 30 seconds when the tasks hold, on average over 10 seconds, this
   * percentage of `maxConcurrentRequests` (the server's high-resolution ConcurrencyUtilization
   * metric): before requests queue, and well before one-minute request counts or CPU notice.
   * From 10 to 100.
   * @default 50
   */
  readonly scaleOutAtConcurrencyPercent?: number;

  /**
   * Have ECS publish the service's CPU utilization every 20 seconds instead of every minute, and
   * scale on it (`ECSServiceAverageCPUUtilizationHighResolution`): the CPU policy reacts in about
   * a minute instead of three. CloudWatch bills the extra datapoints like detailed monitoring.
   * cfn-lint 1.51 and older do not know the property this sets (`MonitoringConfiguration`).
   * @default false
   */
  readonly highResolutionCpuScaling?: boolean;

  /**
   * Scheduled capacity changes, such as fewer tasks at night or none on weekends. A schedule's
   * `minCapacity: 0` makes the service scale to zero when idle while it holds (see `minCapacity`).
   * @default - none
   */
  readonly schedules?: ModelServiceSchedule[];

  /**
   * The most tasks.
   * @default 4
   */
  readonly maxCapacity?: number;

  /**
   * Scale out when load balancer requests per task per minute exceed this.
   * @default 3000
   */
  readonly targetRequestsPerTaskPerMinute?: number;

  /**
   * Scale out when average CPU utilization (percent) exceeds this.
   * @default 70
   */
  readonly targetCpuUtilization?: number;

  /**
   * How long the containers' logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * The model's version: /health, the access log, the `model_server_model_info` metric, the EMF
   * metrics' ModelVersion dimension and the dashboard show it, so a rollout or a rollback shows as
   * a change of version. 1-128 printable characters, no spaces.
   * @default - the serving image's `modelVersion`, else the first 12 hex digits of the model's
   * SHA-256 (of its file manifest for a directory), else the model's S3 key
   */
  readonly modelVersion?: string;

  /**
   * How a new task definition (a new model or image) reaches production traffic.
   * `Rollout.canary()`, `linear()` and `blueGreen()` run the new tasks beside the old ones behind
   * a second target group, test them (`goldenRequests`), shift traffic, and roll back on alarm.
   * @default Rollout.rolling()
   */
  readonly rollout?: Rollout;

  /**
   * Requests with known answers that a side-by-side rollout's new tasks must answer correctly,
   * in time, before production traffic moves to them; any failure rolls the deployment back.
   * @default - none
   */
  readonly goldenRequests?: GoldenRequests;

  /**
   * The golden-signal alarms, and whether they roll deployments back.
   * @default - on, with the documented thresholds, rolling deployments back
   */
  readonly alarms?: ModelAlarmsOptions;

  /**
   * Whether to create a CloudWatch dashboard for the service.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** A scheduled change of a model service's capacity limits. */
export interface ModelServiceSchedule {
  /** The scheduled action's name, unique within the service: letters, digits, `-` and `_`. */
  readonly name: string;
  /** When: `appscaling.Schedule.cron({ hour: '19', minute: '0' })`, `Schedule.at(...)`, `Schedule.rate(...)`. */
  readonly schedule: appscaling.Schedule;
  /**
   * The fewest tasks from then on.
   * @default - unchanged
   */
  readonly minCapacity?: number;
  /**
   * The most tasks from then on.
   * @default - unchanged
   */
  readonly maxCapacity?: number;
  /**
   * The time zone `schedule` is in (an IANA name such as `Europe/Berlin`).
   * @default - UTC
   */
  readonly timeZone?: TimeZone;
}

/** Defaults and limits shared by every model service. */
export const SERVICE_DEFAULTS = {
  containerPort: ModelContainerContract.DEFAULT_PORT,
  healthCheckPath: ModelContainerContract.DEFAULT_HEALTH_PATH,
  startupTimeout: Duration.minutes(5),
  stopTimeout: Duration.seconds(30),
  deregistrationDelay: Duration.seconds(30),
  minCapacity: 2,
  maxCapacity: 4,
  targetRequestsPerTaskPerMinute: 3000,
  targetCpuUtilization: 70,
  scaleToZeroAfter: Duration.minutes(15),
  scaleOutAtConcurrencyPercent: 50,
};

/** The props that have a default, with it filled in. */
export type ServiceSettings = Required<Pick<ModelServiceBaseProps, keyof typeof SERVICE_DEFAULTS>>;
