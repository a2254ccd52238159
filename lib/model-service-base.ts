import { Duration, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ModelContainerContract } from './container-contract';
import { createDefaultVpc } from './default-vpc';
import { modelFetcherImage } from './fetcher-image';
import { addModelContainers, ModelContainers, SERVER_CONTAINER_NAME } from './model-containers';
import { ExistingListenerOptions, ModelEndpoint } from './model-endpoint';
import { ModelSource } from './model-source';
import { ServingImage } from './serving-image';
import { StartupBudget } from './startup-budget';
import { checkDuration, checkIntRange, InvalidPropError } from './validation';

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
   * The VPC. Ignored when `cluster` is given (the cluster's VPC is used).
   * @default - a new VPC with 2 AZs, one NAT gateway, an S3 gateway endpoint and flow logs
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
   * (HEALTH_PATH). It must answer 200 only once the model is loaded.
   * @default '/health'
   */
  readonly healthCheckPath?: string;

  /**
   * Extra environment variables for the server container: non-secret configuration only, as the
   * task definition shows them in plain text. A name that looks like a secret's (`API_KEY`,
   * `DB_PASSWORD`, `..._TOKEN`) gets a synth warning, and cdk-nag's AwsSolutions-ECS2 reports it.
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
   * 30 s, is for loading the model and the first health checks.
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
   * The fewest tasks; autoscaling never goes below it.
   * @default 2
   */
  readonly minCapacity?: number;

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
}

/** Defaults and limits shared by every model service. */
const DEFAULTS = {
  containerPort: ModelContainerContract.DEFAULT_PORT,
  healthCheckPath: ModelContainerContract.DEFAULT_HEALTH_PATH,
  startupTimeout: Duration.minutes(5),
  stopTimeout: Duration.seconds(30),
  deregistrationDelay: Duration.seconds(30),
  minCapacity: 2,
  maxCapacity: 4,
  targetRequestsPerTaskPerMinute: 3000,
  targetCpuUtilization: 70,
};

/** What a compute-specific subclass hands back to the base for wiring. */
export interface ModelServiceCompute {
  readonly cluster: ecs.ICluster;
  readonly taskDefinition: ecs.TaskDefinition;
}

/**
 * The parts of a model service that do not depend on its compute: validation, network, logs,
 * the fetcher and server containers, the load balancer, rollout safety and autoscaling.
 * `FargateModelService` and `GpuModelService` add the compute.
 */
export abstract class ModelServiceBase extends Construct {
  /** The ECS service. */
  public abstract readonly service: ecs.BaseService;
  /** The cluster the service runs in. */
  public abstract readonly cluster: ecs.ICluster;
  /** The task definition (fetcher + server). */
  public abstract readonly taskDefinition: ecs.TaskDefinition;
  /** The VPC the tasks run in. */
  public readonly vpc: ec2.IVpc;
  /** The load balancer's target group for the tasks. */
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** The listener that routes to the tasks. */
  public readonly listener: elbv2.IApplicationListener;
  /** The load balancer, when this construct created one. */
  public readonly loadBalancer?: elbv2.ApplicationLoadBalancer;
  /** The endpoint's base URL, when this construct created the load balancer. */
  public readonly endpointUrl?: string;
  /** The log group of both containers. */
  public readonly logGroup: logs.LogGroup;

  protected readonly settings: Required<Pick<ModelServiceBaseProps,
  'containerPort' | 'healthCheckPath' | 'startupTimeout' | 'stopTimeout' | 'deregistrationDelay'
  | 'minCapacity' | 'maxCapacity' | 'targetRequestsPerTaskPerMinute' | 'targetCpuUtilization'>>;
  private readonly endpoint: ModelEndpoint;

  protected constructor(scope: Construct, id: string, private readonly props: ModelServiceBaseProps) {
    super(scope, id);
    const where = this.constructor.name;
    this.settings = { ...DEFAULTS, ...definedOnly(props) };
    const s = this.settings;

    checkIntRange(where, 'containerPort', s.containerPort, 1, 65535);
    if (s.containerPort === ModelContainerContract.METRICS_PORT) {
      throw new InvalidPropError(where, 'containerPort', `must not be ${ModelContainerContract.METRICS_PORT}, the server's metrics port (never a load balancer target)`);
    }
    if (!Token.isUnresolved(s.healthCheckPath) && !/^\/[\x21-\x7e]*$/.test(s.healthCheckPath)) {
      throw new InvalidPropError(where, 'healthCheckPath', `must start with '/' and contain no spaces, got '${s.healthCheckPath}'`);
    }
    checkDuration(where, 'startupTimeout', s.startupTimeout, StartupBudget.MIN_STARTUP_TIMEOUT, Duration.hours(2));
    checkDuration(where, 'deregistrationDelay', s.deregistrationDelay, Duration.seconds(0), Duration.seconds(3600));
    checkIntRange(where, 'minCapacity', s.minCapacity, 1, 1000);
    checkIntRange(where, 'maxCapacity', s.maxCapacity, 1, 1000);
    if (s.minCapacity > s.maxCapacity) {
      throw new InvalidPropError(where, 'minCapacity', `(${s.minCapacity}) must not exceed maxCapacity (${s.maxCapacity})`);
    }
    checkIntRange(where, 'targetRequestsPerTaskPerMinute', s.targetRequestsPerTaskPerMinute, 1, 1_000_000);
    checkIntRange(where, 'targetCpuUtilization', s.targetCpuUtilization, 10, 95);
    if (props.existingListener) ModelEndpoint.validateExistingListener(where, props.existingListener);
    if (props.existingListener && (props.certificate || props.accessLogsBucket || props.internetFacing !== undefined || props.allowPlainHttp !== undefined)) {
      throw new InvalidPropError(where, 'existingListener',
        'configures the load balancer elsewhere; drop certificate, accessLogsBucket, internetFacing and allowPlainHttp, or drop existingListener');
    }
    if (props.allowPlainHttp && props.certificate) {
      throw new InvalidPropError(where, 'allowPlainHttp', 'applies only without a certificate; with one the load balancer serves HTTPS and redirects HTTP to it');
    }
    if (props.internetFacing === true && !props.certificate && !props.allowPlainHttp) {
      throw new InvalidPropError(where, 'internetFacing',
        'an internet-facing load balancer without a certificate would serve plain HTTP to the internet; pass certificate (HTTPS), ' +
        'set internetFacing: false (reachable from the VPC only), or opt in to plain HTTP with allowPlainHttp: true');
    }
    if (props.cluster && props.vpc) {
      throw new InvalidPropError(where, 'vpc', 'is taken from the cluster when cluster is given; pass one of them');
    }

    this.vpc = props.cluster?.vpc ?? props.vpc ?? createDefaultVpc(this);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });

    this.endpoint = new ModelEndpoint(this, 'Endpoint', {
      vpc: this.vpc,
      containerPort: s.containerPort,
      healthCheckPath: s.healthCheckPath,
      deregistrationDelay: s.deregistrationDelay,
      internetFacing: props.internetFacing ?? (props.certificate !== undefined || props.allowPlainHttp === true),
      certificate: props.certificate,
      existingListener: props.existingListener,
      accessLogsBucket: props.accessLogsBucket,
    });
    this.targetGroup = this.endpoint.targetGroup;
    this.listener = this.endpoint.listener;
    this.loadBalancer = this.endpoint.loadBalancer;
    this.endpointUrl = this.endpoint.url;
  }

  /**
   * Lets `peer` scrape the server's Prometheus metrics (`GET /metrics` on port 9090) from inside
   * the VPC: a Prometheus server, an ADOT or CloudWatch agent. The port is never a load balancer
   * target, so callers from outside cannot reach it whatever the listener's rules; by default
   * nothing but the task itself can.
   */
  public allowMetricsFrom(peer: ec2.IPeer): void {
    this.service.connections.allowFrom(peer, ec2.Port.tcp(ModelContainerContract.METRICS_PORT), 'Prometheus scrapes of the model server\'s /metrics');
  }

  /** The role the task's containers run with; it may read the model and nothing else. */
  public get taskRole(): iam.IRole {
    return this.taskDefinition.taskRole;
  }

  /** The subnets tasks run in. */
  protected get taskSubnets(): ec2.SubnetSelection {
    return this.props.taskSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  }

  /** Adds the fetcher and server containers to the subclass's task definition. */
  protected addContainers(
    taskDefinition: ecs.TaskDefinition,
    compute: {
      workers: number;
      gpuCount?: number;
      volume?: Omit<ecs.Volume, 'name'>;
      serverOptions?: Partial<ecs.ContainerDefinitionOptions>;
      defaultImage?: ServingImage;
    },
  ): ModelContainers {
    const s = this.settings;
    const { defaultImage, ...containerOptions } = compute;
    return addModelContainers(taskDefinition, {
      model: this.props.model.bind(this, taskDefinition.taskRole),
      image: (this.props.image ?? defaultImage ?? ServingImage.fromModelServer()).bind(this),
      fetcherImage: this.props.fetcherImage ?? modelFetcherImage(),
      containerPort: s.containerPort,
      healthCheckPath: s.healthCheckPath,
      routePrefix: this.endpoint.pathPrefix,
      environment: this.props.environment ?? {},
      secrets: this.props.secrets ?? {},
      startupTimeout: s.startupTimeout,
      stopTimeout: s.stopTimeout,
      logGroup: this.logGroup,
      ...containerOptions,
    });
  }

  /** Service settings that keep serving capacity through every deployment. */
  protected serviceDefaults() {
    return {
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: this.settings.startupTimeout,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      vpcSubnets: this.taskSubnets,
    };
  }

  /** Registers the service's server container with the target group and sets up autoscaling. */
  protected attachService(service: ecs.BaseService): void {
    const s = this.settings;
    this.targetGroup.addTarget(service.loadBalancerTarget({
      containerName: SERVER_CONTAINER_NAME,
      containerPort: s.containerPort,
    }));
    const scaling = service.autoScaleTaskCount({ minCapacity: s.minCapacity, maxCapacity: s.maxCapacity });
    scaling.scaleOnRequestCount('Requests', {
      requestsPerTarget: s.targetRequestsPerTaskPerMinute,
      targetGroup: this.targetGroup,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: s.targetCpuUtilization,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });
  }
}

/** The props whose value is not undefined, so they can override defaults with a spread. */
function definedOnly<T extends object>(props: T): Partial<T> {
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as Partial<T>;
}
