import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ModelContainerContract, SERVER_RULES } from '../container-contract';
import { GoldenRequestHook } from '../rollout/golden-request-hook';
import { GoldenRequests } from '../rollout/golden-requests';
import type { ModelServiceBase } from '../service/model-service-base';
import { ModelAlarms } from './model-alarms';
import { ModelAlarmsOptions } from './model-alarms-options';
import { ModelDashboard } from './model-dashboard';
import { ModelMetrics } from './model-metrics';

/** What a compute variant adds to the alarms and the dashboard. */
export interface ComputeMetrics {
  /** GPU utilization (percent), when the compute has GPUs. @default - none */
  readonly gpuUtilization?: cloudwatch.IMetric;
  /** GPU memory in use (percent). @default - none */
  readonly gpuMemoryUsed?: cloudwatch.IMetric;
}

export interface ServiceOperationsProps {
  readonly service: ecs.BaseService;
  readonly metrics: ModelMetrics;
  /** @default - no golden-request hook */
  readonly goldenRequests?: GoldenRequests;
  readonly alarms: ModelAlarmsOptions;
  readonly dashboard: boolean;
  readonly subnets: ec2.SubnetSelection;
  /** The path every server route is below ('' for none). */
  readonly routePrefix: string;
  /** The test header's value, for a side-by-side rollout (which golden requests need). */
  readonly testHeaderValue?: string;
  readonly computeMetrics: ComputeMetrics;
  /** Whether the service may reach zero tasks, when the load balancer answers 503 by design. */
  readonly scalesToZero: boolean;
}

/** What the operations layer made. */
export interface ServiceOperations {
  readonly alarms: cloudwatch.IAlarm[];
  /** @default - none */
  readonly dashboard?: cloudwatch.Dashboard;
  /** @default - none */
  readonly goldenRequestFunction?: lambda.IFunction;
}

/**
 * The operations layer of a model service, in the service construct's own scope: the
 * golden-request lifecycle hook, the golden-signal alarms (rolling deployments back) and the
 * dashboard, all built from the service's `metric…()` methods.
 */
export function addServiceOperations(owner: ModelServiceBase, props: ServiceOperationsProps): ServiceOperations {
  const { service, metrics } = props;
  let goldenRequestFunction: lambda.IFunction | undefined;
  if (props.goldenRequests) {
    const hook = new GoldenRequestHook(owner, 'GoldenRequests', {
      golden: props.goldenRequests,
      vpc: owner.vpc,
      subnets: props.subnets,
      listener: owner.listener,
      routePrefix: props.routePrefix,
      testHeaderValue: props.testHeaderValue!,
    });
    service.addLifecycleHook(hook.target);
    goldenRequestFunction = hook.function.function;
  }

  const alarms: cloudwatch.IAlarm[] = [];
  if (props.alarms.enabled ?? true) {
    const modelAlarms = new ModelAlarms(owner, 'Alarms', owner.metricsServiceName, {
      // 503s a task answers on purpose when it sheds load are not errors of the model: under
      // overload they must not roll a deployment back.
      targetErrorRate: new cloudwatch.MathExpression({
        expression: 'IF(requests > 0, 100 * IF(errors > FILL(shed, 0), errors - FILL(shed, 0), 0) / requests, 0)',
        usingMetrics: { errors: owner.metricErrors(), shed: owner.metricRequestsShed(), requests: owner.metricRequestCount() },
        label: '5xx rate less requests shed (%)',
        period: Duration.minutes(1),
      }),
      loadBalancerErrorRate: owner.loadBalancer && ModelMetrics.rate(
        props.scalesToZero
          // At zero tasks the load balancer answers 503 until a task is up: that is the wake-up, not an error.
          ? new cloudwatch.MathExpression({
            expression: 'FILL(all5xx, 0) - FILL(refused, 0)',
            usingMetrics: {
              all5xx: metrics.loadBalancerMetric('HTTPCode_ELB_5XX_Count', 'Sum'),
              refused: metrics.loadBalancerMetric('HTTPCode_ELB_503_Count', 'Sum'),
            },
            period: Duration.minutes(1),
          })
          : metrics.loadBalancerMetric('HTTPCode_ELB_5XX_Count', 'Sum'),
        metrics.loadBalancerMetric('RequestCount', 'Sum'), 'Load balancer 5xx rate (%)'),
      p99Latency: owner.metricLatency(99),
      unhealthyHosts: owner.metricUnhealthyHosts(),
      missingTasks: new cloudwatch.MathExpression({
        expression: 'desired - running',
        usingMetrics: { desired: owner.metricDesiredTasks(), running: owner.metricRunningTasks() },
        label: 'Tasks missing',
        period: Duration.minutes(1),
      }),
      modelStartFailures: owner.metricModelStartFailures(),
      ...props.computeMetrics,
    }, props.alarms);
    alarms.push(...modelAlarms.alarms);
    if (modelAlarms.deploymentAlarmNames.length > 0) {
      // By name, known at synth; the service is created after the alarms it watches.
      service.enableDeploymentAlarms(modelAlarms.deploymentAlarmNames, { behavior: ecs.AlarmBehavior.ROLLBACK_ON_ALARM });
      service.node.addDependency(...modelAlarms.deploymentAlarms);
    }
  }

  const dashboard = props.dashboard ? new ModelDashboard(owner, 'Dashboard', {
    requests: owner.metricRequestCount(),
    targetErrors: owner.metricErrors(),
    errorRate: owner.metricErrorRate(),
    latencyP50: owner.metricLatency(50),
    latencyP99: owner.metricLatency(99),
    runningTasks: owner.metricRunningTasks(),
    desiredTasks: owner.metricDesiredTasks(),
    cpu: owner.metricCpuUtilization(),
    inFlight: owner.metricInFlightRequests(),
    queued: owner.metricQueuedRequests(),
    shed: owner.metricRequestsShed({ label: 'shed (503)' }),
    coldStart: [
      ...(['ImagePullSeconds', 'ModelFetchSeconds', 'ServerStartSeconds', 'ModelLoadSeconds'] as const).map((name) =>
        metrics.model(name, 'Maximum', { label: name.replace(/Seconds$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase() })),
      owner.metricTimeToReady(),
    ],
    memory: owner.metricMemoryUtilization(),
    modelLatencyP50: metrics.model('ModelLatency', 'p50', { label: 'model p50' }),
    modelLatencyP99: metrics.model('ModelLatency', 'p99', { label: 'model p99' }),
    rowsPerBatch: metrics.model('RowsPerBatch', 'Average', { label: 'average' }),
    rowsPerBatchMax: metrics.model('RowsPerBatch', 'Maximum', { label: 'largest' }),
    requestsRejected: metrics.model('RequestsRejected', 'Sum', { label: 'rejected (4xx/5xx)' }),
    requestsByVersion: metrics.byModelVersion('Requests', 'Sum', 'Requests by version'),
    logGroup: owner.logGroup,
    alarms,
    ...props.computeMetrics,
  }).dashboard : undefined;

  return { alarms, dashboard, goldenRequestFunction };
}

/**
 * The metric filter that counts tasks that failed to download or load their model, made once
 * per service (in its scope, as 'ModelStartFailures') by whichever caller asks first.
 */
export function startFailuresFilter(owner: Construct, logGroup: logs.ILogGroup, serviceName: string): logs.MetricFilter {
  const existing = owner.node.tryFindChild('ModelStartFailures') as logs.MetricFilter | undefined;
  return existing ?? new logs.MetricFilter(owner, 'ModelStartFailures', {
    logGroup,
    // A JSON field only the fetcher and the server write: text a client sends (a path, a
    // User-Agent) reaches the access log as the value of the server's own fields, never as this one.
    filterPattern: logs.FilterPattern.stringValue(`$.${SERVER_RULES.startFailure.field}`, '=', SERVER_RULES.startFailure.value),
    metricNamespace: ModelContainerContract.METRICS_NAMESPACE,
    metricName: `ModelStartFailures-${serviceName}`,
    metricValue: '1',
    defaultValue: 0,
  });
}
