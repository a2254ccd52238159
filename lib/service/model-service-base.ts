import { Annotations, Duration, Names } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ModelContainerContract } from '../container-contract';
import { modelFetcherImage } from '../image/fetcher-image';
import { ServingImage } from '../image/serving-image';
import { ModelMetrics } from '../operations/model-metrics';
import { addServiceOperations, ComputeMetrics, startFailuresFilter } from '../operations/service-operations';
import { Rollout } from '../rollout/rollout';
import { SideBySideTarget } from '../rollout/side-by-side-target';
import { definedOnly, InvalidPropError } from '../validation';
import { createDefaultVpc } from './default-vpc';
import { claimListenerRules } from './listener-claims';
import { addModelContainers, ModelContainers } from './model-containers';
import { ModelEndpoint } from './model-endpoint';
import { ModelServiceBaseProps, SERVICE_DEFAULTS, ServiceSettings } from './service-props';
import { addServiceScaling } from './service-scaling';
import { checkMaxConcurrentRequests, ComputeLimits, scalesToZero, validateServable, validateServiceProps } from './service-validation';
import { checkStartupBudget } from './startup-budget';

/**
 * The parts of a model service that do not depend on its compute. It reads in the order a
 * service is built: the props are validated, the network (VPC, logs, load balancer) is made here,
 * then the variant adds its compute, the containers (`_addContainers`) and the service, which
 * `_attachService` connects to the load balancer, scaling and operations.
 * `FargateModelService` and `GpuModelService` are the variants.
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
  /**
   * The Service dimension of the model server's CloudWatch metrics (EMF, namespace
   * `CdkModelServing`): unique to this service.
   */
  public readonly metricsServiceName: string;

  /** The props with their defaults filled in. @internal */
  protected readonly _settings: ServiceSettings;
  private readonly endpoint: ModelEndpoint;
  private readonly metrics: ModelMetrics;
  private _dashboard?: cloudwatch.Dashboard;
  private _goldenRequestFunction?: lambda.IFunction;
  private _workersPerTask = 1;

  /**
   * @param maxStopTimeout the longest `stopTimeout` the variant's compute allows (ECS: 2 minutes on
   * Fargate, 10 on EC2); the shorter, Fargate's, unless the variant says otherwise
   */
  protected constructor(scope: Construct, id: string, private readonly props: ModelServiceBaseProps, maxStopTimeout: Duration = Duration.minutes(2)) {
    super(scope, id);
    // Validate.
    this._settings = { ...SERVICE_DEFAULTS, ...definedOnly(props) };
    this.rollout = props.rollout ?? Rollout.rolling();
    const limits: ComputeLimits = { maxStopTimeout };
    validateServiceProps(this, props, this._settings, this.rollout, limits);

    // Network: the VPC, the containers' logs and the load balancer in front.
    this.vpc = props.cluster?.vpc ?? props.vpc ?? createDefaultVpc(this);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
    const s = this._settings;
    const existingListener = props.existingListener && {
      ...props.existingListener,
      testPriority: claimListenerRules(this, props.existingListener, this.rollout.sideBySide),
    };
    this.endpoint = new ModelEndpoint(this, 'Endpoint', {
      vpc: this.vpc,
      containerPort: s.containerPort,
      healthCheckPath: s.healthCheckPath,
      deregistrationDelay: s.deregistrationDelay,
      internetFacing: props.internetFacing ?? (props.certificate !== undefined || props.allowPlainHttp === true),
      certificate: props.certificate,
      existingListener,
      accessLogsBucket: props.accessLogsBucket,
      domainName: props.domainName,
      hostedZone: props.hostedZone,
      sideBySide: this.rollout.sideBySide,
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

  /** The role the task's containers run with; it may read the model and nothing else. */
  public get taskRole(): iam.IRole {
    return this.taskDefinition.taskRole;
  }

  /** The subnets tasks run in. */
  protected get taskSubnets(): ec2.SubnetSelection {
    return this.props.taskSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  }

  /** Requests the load balancer sent to the tasks (Sum per minute, both target groups during rollouts). */
  public metricRequestCount(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.targets('RequestCount', 'Sum', 'Requests', props);
  }

  /** The targets' response time at percentile `percentile` (seconds), e.g. 99 for p99. */
  public metricLatency(percentile: number = 99, props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    if (!(percentile > 0 && percentile < 100)) throw new InvalidPropError(this, 'percentile', `must be between 0 and 100, got ${percentile}`);
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

  /** Predictions the tasks refused at once, at `maxConcurrentRequests` (the server's EMF metric RequestsShed, Sum). */
  public metricRequestsShed(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('RequestsShed', 'Sum', props);
  }

  /**
   * The predictions a task holds at once, working on them or waiting for the model (the server's
   * high-resolution EMF metric ConcurrentRequests, each second's most, averaged over 10 s and
   * scaled from a worker to the task). No data while every task is idle.
   */
  public metricInFlightRequests(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.perTask('ConcurrentRequests', this._workersPerTask, 'In-flight requests per task', props);
  }

  /** Of the predictions a task holds, those whose rows wait for the model (the server's EMF metric QueuedRequests, per task, 10 s). */
  public metricQueuedRequests(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.perTask('QueuedRequests', this._workersPerTask, 'Queued requests per task', props);
  }

  /**
   * The share of `maxConcurrentRequests` the tasks hold (percent; the server's EMF metric
   * ConcurrencyUtilization, 10 s): what the service scales out on.
   */
  public metricConcurrencyUtilization(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('ConcurrencyUtilization', 'Average', { period: Duration.seconds(10), label: 'Admission cap in use (%)', ...props });
  }

  /** Targets failing the health check (Maximum). */
  public metricUnhealthyHosts(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.targets('UnHealthyHostCount', 'Maximum', 'Unhealthy targets', props);
  }

  /** Tasks running (Container Insights, Average). */
  public metricRunningTasks(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return ModelMetrics.containerInsights(this.service, 'RunningTaskCount', 'Running tasks', props);
  }

  /** Tasks desired (Container Insights, Average). */
  public metricDesiredTasks(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return ModelMetrics.containerInsights(this.service, 'DesiredTaskCount', 'Desired tasks', props);
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

  /**
   * A task's time from its image pull's start to its first worker's model loaded (seconds; the
   * server's EMF metric TimeToReadySeconds, from the ECS task metadata, once per task).
   */
  public metricTimeToReady(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.metrics.model('TimeToReadySeconds', 'Maximum', { label: 'time to ready', ...props });
  }

  /** Tasks that failed to download or load their model (a metric filter on the containers' log). */
  public metricModelStartFailures(): cloudwatch.IMetric {
    return startFailuresFilter(this, this.logGroup, this.metricsServiceName)
      .metric({ statistic: 'Sum', period: Duration.minutes(1), label: 'Model start failures' });
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

  /** The cluster a variant makes when none is given: in the service's VPC, with Container Insights. */
  protected defaultCluster(): ecs.Cluster {
    return new ecs.Cluster(this, 'Cluster', { vpc: this.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
  }

  /** Adds the fetcher and server containers to the variant's task definition. @internal */
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
    validateServable(this, model, image, compute.gpuCount ?? 0, this.props.environment ?? {});
    checkStartupBudget(this, model.sizeBytes, s.startupTimeout);
    checkMaxConcurrentRequests(this, this.props.maxConcurrentRequests, compute.workers);
    this._workersPerTask = compute.workers;
    return addModelContainers(taskDefinition, {
      model,
      modelVersion: this.props.modelVersion ?? image.modelVersion ?? model.modelVersion ?? 'unversioned',
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
      maxConcurrentRequests: this.props.maxConcurrentRequests,
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
   * Registers the service's server container with the load balancer, then adds scaling and the
   * operations layer (golden-request hook, alarms with rollback, dashboard).
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
      ownsListener: this.loadBalancer !== undefined,
    });
    this.targetGroup.addTarget(service.loadBalancerTarget({
      containerName: ModelContainerContract.SERVER_CONTAINER_NAME,
      containerPort: s.containerPort,
      alternateTarget: sideBySide?.alternateTarget,
    }));
    sideBySide?.dropRedundantDependencies(service);

    const toZero = scalesToZero(s, this.props.schedules);
    addServiceScaling(service, {
      ...s,
      targetGroup: this.targetGroup,
      requestsPerTaskAcrossTargetGroups: sideBySide
        ? this.metrics.targets('RequestCountPerTarget', 'Sum', 'Requests per task') as cloudwatch.MathExpression
        : undefined,
      concurrencyUtilization: this.metricConcurrencyUtilization(),
      highResolutionCpuScaling: this.props.highResolutionCpuScaling ?? false,
      schedules: this.props.schedules ?? [],
      scaleToZero: toZero ? {
        requests: this.metricRequestCount(),
        refusedByLoadBalancer: this.metrics.loadBalancerMetric('HTTPCode_ELB_503_Count', 'Sum'),
        desiredTasks: this.metricDesiredTasks(),
        idleAfter: s.scaleToZeroAfter,
        startupTimeout: s.startupTimeout,
      } : undefined,
    });

    const operations = addServiceOperations(this, {
      service,
      metrics: this.metrics,
      goldenRequests: this.props.goldenRequests,
      alarms: this.props.alarms ?? {},
      dashboard: this.props.dashboard ?? true,
      subnets: this.taskSubnets,
      routePrefix: endpoint.pathPrefix,
      testHeaderValue: endpoint.testHeaderValue,
      computeMetrics,
      scalesToZero: toZero,
    });
    this.alarms.push(...operations.alarms);
    this._dashboard = operations.dashboard;
    this._goldenRequestFunction = operations.goldenRequestFunction;
  }
}
