import { Duration, Names, Validations } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { ScaleToZero, ScaleToZeroProps } from './scale-to-zero';
import { ModelServiceSchedule } from './service-props';
import { stepOnAlarm } from './step-on-alarm';

export interface ServiceScalingProps {
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly targetRequestsPerTaskPerMinute: number;
  readonly targetCpuUtilization: number;
  /** The production target group. */
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  /**
   * Requests per task summed over both target groups, for a side-by-side rollout.
   * @default - one target group: aws-cdk-lib's request-count policy on `targetGroup`
   */
  readonly requestsPerTaskAcrossTargetGroups?: cloudwatch.MathExpression;
  /** The tasks' share of their admission cap in use (percent, Average over 10 s). */
  readonly concurrencyUtilization: cloudwatch.IMetric;
  readonly scaleOutAtConcurrencyPercent: number;
  /** Track ECS's 20-second CPU metric instead of the one-minute one. */
  readonly highResolutionCpuScaling: boolean;
  readonly schedules: ModelServiceSchedule[];
  /** Scale to zero when idle, and wake on a request. @default - never below minCapacity's floor of 1 */
  readonly scaleToZero?: Omit<ScaleToZeroProps, 'scalableTarget'>;
}

/** Scale-in waits long enough for a burst to pass; scale-out reacts within a minute. */
const COOLDOWNS = { scaleInCooldown: Duration.minutes(5), scaleOutCooldown: Duration.minutes(1) };

/** Task-count autoscaling on load balancer requests per task and on CPU. */
export function addServiceScaling(service: ecs.BaseService, props: ServiceScalingProps): ecs.ScalableTaskCount {
  const scaling = service.autoScaleTaskCount({ minCapacity: props.minCapacity, maxCapacity: props.maxCapacity });
  if (props.requestsPerTaskAcrossTargetGroups) {
    scaleOnRequestsAcrossTargetGroups(scaling, props.requestsPerTaskAcrossTargetGroups, props.targetRequestsPerTaskPerMinute);
  } else {
    scaling.scaleOnRequestCount('Requests', { requestsPerTarget: props.targetRequestsPerTaskPerMinute, targetGroup: props.targetGroup, ...COOLDOWNS });
  }
  scaling.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: props.targetCpuUtilization, ...COOLDOWNS });
  if (props.highResolutionCpuScaling) useHighResolutionCpu(service, scaling);
  const target = scalableTarget(scaling);
  scaleOutOnConcurrency(scaling, target, props.concurrencyUtilization, props.scaleOutAtConcurrencyPercent);
  for (const s of props.schedules) {
    scaling.scaleOnSchedule(s.name, { schedule: s.schedule, minCapacity: s.minCapacity, maxCapacity: s.maxCapacity, timeZone: s.timeZone });
  }
  if (props.scaleToZero) new ScaleToZero(scaling, 'ScaleToZero', { ...props.scaleToZero, scalableTarget: target });
  return scaling;
}

function scalableTarget(scaling: ecs.ScalableTaskCount): appscaling.ScalableTarget {
  return scaling.node.findAll().find((c): c is appscaling.ScalableTarget => c instanceof appscaling.ScalableTarget)!;
}

/**
 * A step policy on the server's 10-second ConcurrencyUtilization: two of three datapoints at or
 * above the threshold (20-30 s, plus the server's 10 s interval and CloudWatch's ingestion) add
 * half the tasks again, and twice as many at 90 % and up, at least one task. Scale-in stays with
 * the target-tracking policies, which are slower to let capacity go.
 */
function scaleOutOnConcurrency(
  scaling: ecs.ScalableTaskCount, target: appscaling.IScalableTarget, utilization: cloudwatch.IMetric, percent: number,
): void {
  const saturated = 90 - percent;
  stepOnAlarm(scaling, {
    ids: { action: 'Concurrency', alarm: 'ConcurrencyAlarm' },
    action: {
      scalingTarget: target,
      adjustmentType: appscaling.AdjustmentType.PERCENT_CHANGE_IN_CAPACITY,
      minAdjustmentMagnitude: 1,
      cooldown: COOLDOWNS.scaleOutCooldown,
      metricAggregationType: appscaling.MetricAggregationType.AVERAGE,
    },
    adjustments: saturated > 0
      ? [{ adjustment: 50, lowerBound: 0, upperBound: saturated }, { adjustment: 100, lowerBound: saturated }]
      : [{ adjustment: 100, lowerBound: 0 }],
    alarm: {
      alarmDescription: `The tasks hold ${percent}% or more of their admission cap (maxConcurrentRequests): scale out before requests are shed.`,
      metric: utilization,
      threshold: percent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    },
  });
}

/**
 * ECS's 20-second CPU metric for the service, and the CPU policy on it. Neither aws-cdk-lib's
 * FargateService/Ec2Service nor its predefined-metric enum has them yet, so both are set on the
 * CloudFormation resources (same logical IDs, updated in place).
 */
function useHighResolutionCpu(service: ecs.BaseService, scaling: ecs.ScalableTaskCount): void {
  const cfnService = service.node.defaultChild as ecs.CfnService;
  cfnService.addPropertyOverride('MonitoringConfiguration', {
    MetricConfigurations: [{ MetricNames: ['CPUUtilization'], ResolutionSeconds: 20 }],
  });
  Validations.of(cfnService).acknowledge({
    id: 'CloudFormation-Validate::F3002',
    reason: 'MonitoringConfiguration (ECS 20-second CPU metrics, June 2026) is newer than the resource schema this aws-cdk-lib validates against',
  });
  const cpu = scalableTarget(scaling).node.findChild('Cpu').node.defaultChild as appscaling.CfnScalingPolicy;
  cpu.addPropertyOverride('TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType',
    'ECSServiceAverageCPUUtilizationHighResolution');
}

/**
 * Request-count scaling that holds during a side-by-side rollout: requests per target summed
 * over both target groups, each filled with 0 when it has no targets (after a rollout the tasks
 * are in either one). aws-cdk-lib's scaleOnRequestCount tracks one target group only, and its
 * custom-metric form takes no metric math, so the policy is written at the CloudFormation level.
 */
function scaleOnRequestsAcrossTargetGroups(scaling: ecs.ScalableTaskCount, perTarget: cloudwatch.MathExpression, targetValue: number): void {
  const target = scalableTarget(scaling);
  const queries = Object.entries(perTarget.usingMetrics).map(([id, metric]) => {
    const stat = (metric as cloudwatch.Metric).toMetricConfig().metricStat!;
    return {
      id,
      returnData: false,
      metricStat: {
        metric: {
          namespace: stat.namespace,
          metricName: stat.metricName,
          dimensions: stat.dimensions?.map((d) => ({ name: d.name, value: d.value })),
        },
        stat: stat.statistic,
      },
    };
  });
  new appscaling.CfnScalingPolicy(scaling, 'Requests', {
    policyName: Names.uniqueResourceName(scaling, { maxLength: 255, separator: '-' }) + '-Requests',
    policyType: 'TargetTrackingScaling',
    scalingTargetId: target.scalableTargetId,
    targetTrackingScalingPolicyConfiguration: {
      targetValue,
      scaleInCooldown: COOLDOWNS.scaleInCooldown.toSeconds(),
      scaleOutCooldown: COOLDOWNS.scaleOutCooldown.toSeconds(),
      customizedMetricSpecification: {
        metrics: [...queries, { id: 'perTask', expression: perTarget.expression, label: 'Requests per task', returnData: true }],
      },
    },
  });
}
