import { createHash } from 'node:crypto';
import { Annotations, Duration, Names, Token } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ModelContainerContract } from './container-contract';
import { createDefaultVpc } from './default-vpc';
import { modelFetcherImage } from './fetcher-image';
import { addModelContainers, ModelContainers, SERVER_CONTAINER_NAME } from './model-containers';
import { GoldenRequestHook } from './golden-request-hook';
import { GoldenRequests } from './golden-requests';
import { ModelAlarms, validateAlarmOptions } from './model-alarms';
import { ModelAlarmsOptions } from './model-alarms-options';
import { ModelDashboard } from './model-dashboard';
import { ExistingListenerOptions, ModelEndpoint } from './model-endpoint';
import { ModelMetrics } from './model-metrics';
import { ModelSource, ModelSourceConfig } from './model-source';
import { Rollout } from './rollout';
import { SideBySideTarget } from './side-by-side-target';
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

/** What a compute-specific subclass adds to the operations layer. */
export interface ComputeMetrics {
  /** GPU utilization (percent), when the compute has GPUs. @default - none */
  readonly gpuUtilization?: cloudwatch.IMetric;
  /** GPU memory in use (percent). @default - none */
  readonly gpuMemoryUsed?: cloudwatch.IMetric;
}

/** A model version: printable ASCII without spaces, as a metric dimension and a header allow. */
const MODEL_VERSION = /^[\x21-\x7e]{1,128}$/;

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
  /** The second target group, which a canary, linear or blue/green rollout starts the new tasks in. */
  public readonly alternateTargetGroup?: elbv2.ApplicationTargetGroup;
  /** How new task definitions reach production traffic. */
  public readonly rollout: Rollout;
  /** The golden-signal alarms (empty when `alarms.enabled` is false). */
  public readonly alarms: cloudwatch.IAlarm[] = [];
  private _dashboard?: cloudwatch.Dashboard;
  private _goldenRequestFunction?: lambda.IFunction;
  /**
   * The Service dimension of the model server's CloudWatch metrics (EMF, namespace
   * `CdkModelServing`): unique to this service.
   */
  public readonly metricsServiceName: string;

  /** The props with their defaults filled in. @internal */
  protected readonly _settings: Required<Pick<ModelServiceBaseProps,
  'containerPort' | 'healthCheckPath' | 'startupTimeout' | 'stopTimeout' | 'deregistrationDelay'
  | 'minCapacity' | 'maxCapacity' | 'targetRequestsPerTaskPerMinute' | 'targetCpuUtilization'>>;
  private readonly endpoint: ModelEndpoint;
  private readonly metrics: ModelMetrics;

  protected constructor(scope: Construct, id: string, private readonly props: ModelServiceBaseProps) {
    super(scope, id);
    const where = this.constructor.name;
    this._settings = { ...DEFAULTS, ...definedOnly(props) };
    const s = this._settings;

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
    this.rollout = props.rollout ?? Rollout.rolling();
    const sideBySide = this.rollout.sideBySide;
    if (props.existingListener) ModelEndpoint.validateExistingListener(where, props.existingListener, sideBySide);
    if (props.goldenRequests && !sideBySide) {
      throw new InvalidPropError(where, 'goldenRequests',
        'are checked against the new tasks before traffic moves to them, which only a side-by-side rollout does: set rollout to Rollout.canary(), Rollout.linear() or Rollout.blueGreen()');
    }
    if (props.modelVersion !== undefined && !Token.isUnresolved(props.modelVersion) && !MODEL_VERSION.test(props.modelVersion)) {
      throw new InvalidPropError(where, 'modelVersion', `must be 1-128 printable ASCII characters without spaces, got '${props.modelVersion}'`);
    }
    validateAlarmOptions(where, props.alarms ?? {});
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
      sideBySide,
    });
    this.targetGroup = this.endpoint.targetGroup;
    this.alternateTargetGroup = this.endpoint.alternateTargetGroup;
    this.listener = this.endpoint.listener;
    this.loadBalancer = this.endpoint.loadBalancer;
    this.endpointUrl = this.endpoint.url;
    this.metricsServiceName = Names.uniqueResourceName(this, { maxLength: 128, separator: '-' });
    this.metrics = new ModelMetrics(
      [this.targetGroup, ...(this.alternateTargetGroup ? [this.alternateTargetGroup] : [])], this.listener, this.metricsServiceName);
  }

  /** The service's dashboard, unless `dashboard` is false. */
  public get dashboard(): cloudwatch.Dashboard | undefined {
    return this._dashboard;
  }

  /** The golden-request lifecycle hook's function, when `goldenRequests` is given. */
  public get goldenRequestFunction(): lambda.IFunction | undefined {
    return this._goldenRequestFunction;
  }

  /** Requests the load balancer sent to the tasks (Sum per minute, both target groups during rollouts). */
  public metricRequestCount(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.targets('RequestCount', 'Sum', 'Requests', props);
  }

  /** The targets' response time at percentile `percentile` (seconds), e.g. 99 for p99. */
  public metricLatency(percentile: number = 99, props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    if (!(percentile > 0 && percentile < 100)) throw new InvalidPropError('metricLatency', 'percentile', `must be between 0 and 100, got ${percentile}`);
    return this.metrics.targets('TargetResponseTime', `p${percentile}`, `p${percentile} latency`, props, 'MAX');
  }

  /** 5xx answers from the tasks (Sum). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.targets('HTTPCode_Target_5XX_Count', 'Sum', '5xx from the tasks', props);
  }

  /** 4xx answers from the tasks (Sum): bad requests. */
  public metricClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.targets('HTTPCode_Target_4XX_Count', 'Sum', '4xx from the tasks', props);
  }

  /** The percentage of requests the tasks answered 5xx. */
  public metricErrorRate(): cloudwatch.IMetric {
    return ModelMetrics.rate(this.metricErrors(), this.metricRequestCount(), '5xx rate (%)');
  }

  /** Targets failing the health check (Maximum). */
  public metricUnhealthyHosts(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.targets('UnHealthyHostCount', 'Maximum', 'Unhealthy targets', props);
  }

  /** Tasks running (Container Insights, Average). */
  public metricRunningTasks(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.containerInsights('RunningTaskCount', 'Running tasks', props);
  }

  /** Tasks desired (Container Insights, Average). */
  public metricDesiredTasks(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.containerInsights('DesiredTaskCount', 'Desired tasks', props);
  }

  /** The service's CPU utilization (percent). */
  public metricCpuUtilization(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.service.metricCpuUtilization({ label: 'CPU', ...props });
  }

  /** The service's memory utilization (percent). */
  public metricMemoryUtilization(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.service.metricMemoryUtilization({ label: 'Memory', ...props });
  }

  /** Time in the model for one call, a micro-batch or a lone request (ms; the server's EMF metric ModelLatency). */
  public metricModelLatency(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('ModelLatency', 'p99', props);
  }

  /** Rows in one model call (the server's EMF metric RowsPerBatch). */
  public metricRowsPerBatch(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('RowsPerBatch', 'Average', props);
  }

  /** Prediction requests the server answered 4xx or 5xx (the server's EMF metric RequestsRejected). */
  public metricRequestsRejected(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('RequestsRejected', 'Sum', props);
  }

  /** How long a worker took to load the model (seconds; the server's EMF metric ModelLoadSeconds). */
  public metricModelLoadTime(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('ModelLoadSeconds', 'Maximum', props);
  }

  /** Tasks that failed to download or load their model (a metric filter on the containers' log). */
  public metricModelStartFailures(): cloudwatch.IMetric {
    return this.startFailures.metric({ statistic: 'Sum', period: Duration.minutes(1), label: 'Model start failures' });
  }

  private get startFailures(): logs.MetricFilter {
    const existing = this.node.tryFindChild('ModelStartFailures') as logs.MetricFilter | undefined;
    return existing ?? new logs.MetricFilter(this, 'ModelStartFailures', {
      logGroup: this.logGroup,
      filterPattern: logs.FilterPattern.anyTerm(...ModelContainerContract.START_FAILURE_MARKERS),
      metricNamespace: ModelContainerContract.METRICS_NAMESPACE,
      metricName: `ModelStartFailures-${this.metricsServiceName}`,
      metricValue: '1',
      defaultValue: 0,
    });
  }

  private containerInsights(metricName: string, label: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'ECS/ContainerInsights',
      metricName,
      dimensionsMap: { ClusterName: this.cluster.clusterName, ServiceName: this.service.serviceName },
      statistic: 'Average',
      period: Duration.minutes(1),
      label,
      ...props,
    });
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

  /** Adds the fetcher and server containers to the subclass's task definition. @internal */
  protected _addContainers(
    taskDefinition: ecs.TaskDefinition,
    compute: {
      workers: number;
      gpuCount?: number;
      volume?: Omit<ecs.Volume, 'name'>;
      serverOptions?: Partial<ecs.ContainerDefinitionOptions>;
      defaultImage?: ServingImage;
    },
  ): ModelContainers {
    const s = this._settings;
    const { defaultImage, ...containerOptions } = compute;
    const model = this.props.model.bind(this, taskDefinition.taskRole);
    const image = (this.props.image ?? defaultImage ?? ServingImage.fromModelServer()).bind(this);
    return addModelContainers(taskDefinition, {
      model,
      modelVersion: this.props.modelVersion ?? image.modelVersion ?? defaultModelVersion(model),
      serviceName: this.metricsServiceName,
      image,
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

  /** Service settings that keep serving capacity through every deployment, and the rollout's. @internal */
  protected _serviceDefaults() {
    const rollout = this.rollout.config;
    return {
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      // ECS's circuit breaker serves rolling deployments only; the others roll back on their
      // lifecycle hooks and alarms.
      ...(this.rollout.sideBySide ? {} : { circuitBreaker: { enable: true, rollback: true } }),
      deploymentStrategy: rollout.strategy,
      bakeTime: rollout.bakeTime,
      canaryConfiguration: rollout.canaryConfiguration,
      linearConfiguration: rollout.linearConfiguration,
      healthCheckGracePeriod: this._settings.startupTimeout,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
      vpcSubnets: this.taskSubnets,
    };
  }

  /**
   * Registers the service's server container with the load balancer, and adds autoscaling, the
   * golden-request hook, the alarms (and deployment rollback on them) and the dashboard.
   * @internal
   */
  protected _attachService(service: ecs.BaseService, computeMetrics: ComputeMetrics = {}): void {
    const s = this._settings;
    const endpoint = this.endpoint;
    if (this.rollout.sideBySide) {
      Annotations.of(service).acknowledgeWarning('@aws-cdk/aws-ecs:shouldUseCircuitBreaker',
        'ECS offers the circuit breaker to rolling deployments only; canary, linear and blue/green deployments roll back on their lifecycle hook and deployment alarms.');
    }
    const sideBySide = endpoint.alternateTargetGroup && new SideBySideTarget(this, 'Rollout', {
      listener: this.listener,
      targetGroup: this.targetGroup,
      alternateTargetGroup: endpoint.alternateTargetGroup,
      productionRule: endpoint.productionRule!,
      testRule: endpoint.testRule!,
    });
    this.targetGroup.addTarget(service.loadBalancerTarget({
      containerName: SERVER_CONTAINER_NAME,
      containerPort: s.containerPort,
      alternateTarget: sideBySide?.alternateTarget,
    }));
    sideBySide?.dropRedundantDependencies(service);

    const scaling = service.autoScaleTaskCount({ minCapacity: s.minCapacity, maxCapacity: s.maxCapacity });
    const cooldowns = { scaleInCooldown: Duration.minutes(5), scaleOutCooldown: Duration.minutes(1) };
    if (sideBySide) {
      this.scaleOnRequestsAcrossTargetGroups(scaling);
    } else {
      scaling.scaleOnRequestCount('Requests', { requestsPerTarget: s.targetRequestsPerTaskPerMinute, targetGroup: this.targetGroup, ...cooldowns });
    }
    scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: s.targetCpuUtilization, ...cooldowns });

    if (this.props.goldenRequests) {
      const hook = new GoldenRequestHook(this, 'GoldenRequests', {
        golden: this.props.goldenRequests,
        vpc: this.vpc,
        subnets: this.taskSubnets,
        listener: this.listener,
        routePrefix: endpoint.pathPrefix,
      });
      service.addLifecycleHook(hook.target);
      this._goldenRequestFunction = hook.function.function;
    }

    const alarmOptions = this.props.alarms ?? {};
    if (alarmOptions.enabled ?? true) {
      const alarms = new ModelAlarms(this, 'Alarms', this.metricsServiceName, {
        targetErrorRate: this.metricErrorRate(),
        loadBalancerErrorRate: this.loadBalancer && ModelMetrics.rate(
          this.metrics.loadBalancerMetric('HTTPCode_ELB_5XX_Count', 'Sum'), this.metrics.loadBalancerMetric('RequestCount', 'Sum'), 'Load balancer 5xx rate (%)'),
        p99Latency: this.metricLatency(99),
        unhealthyHosts: this.metricUnhealthyHosts(),
        missingTasks: new cloudwatch.MathExpression({
          expression: 'desired - running',
          usingMetrics: { desired: this.metricDesiredTasks(), running: this.metricRunningTasks() },
          label: 'Tasks missing',
          period: Duration.minutes(1),
        }),
        modelStartFailures: this.metricModelStartFailures(),
        ...computeMetrics,
      }, alarmOptions);
      this.alarms.push(...alarms.alarms);
      if (alarms.deploymentAlarmNames.length > 0) {
        // By name, known at synth; the service is created after the alarms it watches.
        service.enableDeploymentAlarms(alarms.deploymentAlarmNames, { behavior: ecs.AlarmBehavior.ROLLBACK_ON_ALARM });
        service.node.addDependency(...alarms.deploymentAlarms);
      }
    }

    if (this.props.dashboard ?? true) {
      this._dashboard = new ModelDashboard(this, 'Dashboard', {
        requests: this.metricRequestCount(),
        targetErrors: this.metricErrors(),
        errorRate: this.metricErrorRate(),
        latencyP50: this.metricLatency(50),
        latencyP99: this.metricLatency(99),
        runningTasks: this.metricRunningTasks(),
        desiredTasks: this.metricDesiredTasks(),
        cpu: this.metricCpuUtilization(),
        memory: this.metricMemoryUtilization(),
        modelLatencyP50: this.metrics.model('ModelLatency', 'p50', { label: 'model p50' }),
        modelLatencyP99: this.metrics.model('ModelLatency', 'p99', { label: 'model p99' }),
        rowsPerBatch: this.metrics.model('RowsPerBatch', 'Average', { label: 'average' }),
        rowsPerBatchMax: this.metrics.model('RowsPerBatch', 'Maximum', { label: 'largest' }),
        requestsRejected: this.metrics.model('RequestsRejected', 'Sum', { label: 'rejected (4xx/5xx)' }),
        requestsByVersion: this.metrics.byModelVersion('Requests', 'Sum', 'Requests by version'),
        logGroup: this.logGroup,
        alarms: this.alarms,
        ...computeMetrics,
      }).dashboard;
    }
  }

  /**
   * Request-count scaling that holds during a side-by-side rollout: requests per target summed
   * over both target groups, each filled with 0 when it has no targets (after a rollout the tasks
   * are in either one). aws-cdk-lib's scaleOnRequestCount tracks one target group only, and its
   * custom-metric form takes no metric math, so the policy is written at the CloudFormation level.
   */
  private scaleOnRequestsAcrossTargetGroups(scaling: ecs.ScalableTaskCount): void {
    const target = scaling.node.findAll().find((c): c is appscaling.ScalableTarget => c instanceof appscaling.ScalableTarget)!;
    const perTarget = this.metrics.targets('RequestCountPerTarget', 'Sum', 'Requests per task') as cloudwatch.MathExpression;
    const queries = Object.entries(perTarget.usingMetrics).map(([id, metric]) => {
      const stat = (metric as cloudwatch.Metric).toMetricConfig().metricStat!;
      return {
        id,
        returnData: false,
        metricStat: {
          metric: { namespace: stat.namespace, metricName: stat.metricName, dimensions: stat.dimensions?.map((d) => ({ name: d.name, value: d.value })) },
          stat: stat.statistic,
        },
      };
    });
    new appscaling.CfnScalingPolicy(scaling, 'Requests', {
      policyName: Names.uniqueResourceName(scaling, { maxLength: 255, separator: '-' }) + '-Requests',
      policyType: 'TargetTrackingScaling',
      scalingTargetId: target.scalableTargetId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: this._settings.targetRequestsPerTaskPerMinute,
        scaleInCooldown: 300,
        scaleOutCooldown: 60,
        customizedMetricSpecification: {
          metrics: [...queries, { id: 'perTask', expression: perTarget.expression, label: 'Requests per task', returnData: true }],
        },
      },
    });
  }
}

/** The version a model gets unless the user names one: its checksum, else its S3 key. */
function defaultModelVersion(model: ModelSourceConfig): string {
  if (model.sha256) return model.sha256.slice(0, 12);
  if (model.manifest) {
    const canonical = JSON.stringify(Object.entries(model.manifest).sort(([a], [b]) => (a < b ? -1 : 1)));
    return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
  }
  return /^s3:\/\/[^/]+\/(.+?)\/*$/.exec(model.uri)?.[1] ?? 'unversioned';
}

/** The props whose value is not undefined, so they can override defaults with a spread. */
function definedOnly<T extends object>(props: T): Partial<T> {
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as Partial<T>;
}
