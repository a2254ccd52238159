import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { checkDuration, checkIntRange, InvalidPropError, PropOwner } from '../validation';
import { ModelAlarmsOptions } from './model-alarms-options';

/** The metrics the alarms watch. */
export interface ModelAlarmMetrics {
  readonly targetErrorRate: cloudwatch.IMetric;
  /** @default - none (a shared load balancer's errors are not this service's alone) */
  readonly loadBalancerErrorRate?: cloudwatch.IMetric;
  readonly p99Latency: cloudwatch.IMetric;
  readonly unhealthyHosts: cloudwatch.IMetric;
  readonly missingTasks: cloudwatch.IMetric;
  readonly modelStartFailures: cloudwatch.IMetric;
  /** @default - no GPU alarms */
  readonly gpuUtilization?: cloudwatch.IMetric;
  /** @default - no GPU alarms */
  readonly gpuMemoryUsed?: cloudwatch.IMetric;
}

/** Checks the options at the top of the service's constructor. */
export function validateAlarmOptions(where: PropOwner, options: ModelAlarmsOptions): void {
  const prop = (name: string) => `alarms.${name}`;
  if (options.errorRatePercent !== undefined && !(options.errorRatePercent > 0 && options.errorRatePercent <= 100)) {
    throw new InvalidPropError(where, prop('errorRatePercent'), `must be more than 0 and at most 100, got ${options.errorRatePercent}`);
  }
  checkDuration(where, prop('p99Latency'), options.p99Latency, Duration.millis(1), Duration.minutes(15));
  checkIntRange(where, prop('evaluationMinutes'), options.evaluationMinutes, 1, 60);
  checkIntRange(where, prop('gpuUtilizationPercent'), options.gpuUtilizationPercent, 1, 100);
  checkIntRange(where, prop('gpuMemoryPercent'), options.gpuMemoryPercent, 1, 100);
  checkIntRange(where, prop('gpuIdlePercent'), options.gpuIdlePercent, 1, 100);
  checkIntRange(where, prop('gpuIdleHours'), options.gpuIdleHours, 1, 24);
  if (options.enabled === false) {
    const set = ([
      'errorRatePercent', 'p99Latency', 'evaluationMinutes', 'alarmAction', 'gpuUtilizationPercent', 'gpuMemoryPercent', 'gpuIdlePercent', 'gpuIdleHours',
    ] as const)
      .filter((k) => options[k] !== undefined);
    if (set.length > 0) throw new InvalidPropError(where, prop(set[0]), 'has no effect with alarms.enabled: false; drop it, or enable the alarms');
  }
}

/**
 * Alarms on a model service's golden signals: 5xx rate, p99 latency, unhealthy targets, tasks
 * missing, a model that fails to download or load, and (on GPU capacity) GPU saturation and idle GPUs.
 */
export class ModelAlarms extends Construct {
  /** Every alarm. */
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The alarms that roll a deployment back (none refers to the service). */
  public readonly deploymentAlarms: cloudwatch.Alarm[] = [];
  /** Their names, known at synth. */
  public readonly deploymentAlarmNames: string[] = [];

  /**
   * @param namePrefix the alarms' names start with it (the service's unique metrics name). Named
   * alarms read well in the console, and ECS's deployment configuration names them without
   * referring to the alarm resources.
   */
  constructor(scope: Construct, id: string, namePrefix: string, metrics: ModelAlarmMetrics, options: ModelAlarmsOptions) {
    super(scope, id);
    const minutes = options.evaluationMinutes ?? 3;
    const errorRate = options.errorRatePercent ?? 5;
    const latency = options.p99Latency ?? Duration.seconds(1);
    const rollback = options.rollbackOnAlarm ?? true;

    const add = (
      alarmId: string, metric: cloudwatch.IMetric, threshold: number, description: string,
      extra: Partial<cloudwatch.CreateAlarmOptions> = {}, rollsBack = false,
    ) => {
      const alarmName = `${namePrefix}-${alarmId}`;
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        alarmName,
        metric,
        threshold,
        evaluationPeriods: minutes,
        datapointsToAlarm: minutes,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
        ...extra,
      });
      if (options.alarmAction) alarm.addAlarmAction(options.alarmAction);
      this.alarms.push(alarm);
      if (rollsBack && rollback) {
        this.deploymentAlarms.push(alarm);
        this.deploymentAlarmNames.push(alarmName);
      }
      return alarm;
    };

    add('TargetErrorRate', metrics.targetErrorRate, errorRate, `More than ${errorRate}% of requests answered 5xx by the model tasks`, {}, true);
    add('P99Latency', metrics.p99Latency, latency.toMilliseconds() / 1000, `p99 response time above ${latency.toMilliseconds()} ms`, {}, true);
    add('ModelStartFailures', metrics.modelStartFailures, 0,
      'A task failed to download or load its model (model-fetcher errors, "model failed to load")', { evaluationPeriods: 1, datapointsToAlarm: 1 }, true);
    if (metrics.loadBalancerErrorRate) {
      add('LoadBalancerErrorRate', metrics.loadBalancerErrorRate, errorRate, `More than ${errorRate}% of requests answered 5xx by the load balancer (no healthy target, timeouts)`);
    }
    add('UnhealthyTargets', metrics.unhealthyHosts, 0, 'Targets failing the /health check', { evaluationPeriods: Math.max(minutes, 5), datapointsToAlarm: Math.max(minutes, 5) });
    add('TasksMissing', metrics.missingTasks, 0, 'Fewer tasks running than desired (Container Insights)', { evaluationPeriods: Math.max(minutes, 10), datapointsToAlarm: Math.max(minutes, 10) });
    if (metrics.gpuUtilization) {
      const pct = options.gpuUtilizationPercent ?? 90;
      add('GpuUtilization', metrics.gpuUtilization, pct, `GPU utilization above ${pct}% (CloudWatch agent): the GPUs are saturated`, { evaluationPeriods: 15, datapointsToAlarm: 15 });
    }
    if (metrics.gpuUtilization instanceof cloudwatch.Metric) {
      const pct = options.gpuIdlePercent ?? 5;
      const hours = options.gpuIdleHours ?? 3;
      add('GpuIdle', metrics.gpuUtilization.with({ statistic: 'Maximum', period: Duration.hours(1) }), pct,
        `GPU utilization under ${pct}% for ${hours} hours (CloudWatch agent): GPU instances paid for and idle`, {
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, evaluationPeriods: hours, datapointsToAlarm: hours,
        });
    }
    if (metrics.gpuMemoryUsed) {
      const pct = options.gpuMemoryPercent ?? 90;
      add('GpuMemory', metrics.gpuMemoryUsed, pct, `GPU memory in use above ${pct}% (CloudWatch agent)`, { evaluationPeriods: 5, datapointsToAlarm: 5 });
    }
  }
}
