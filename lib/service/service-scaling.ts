import { Duration, Names } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';

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
  return scaling;
}

/**
 * Request-count scaling that holds during a side-by-side rollout: requests per target summed
 * over both target groups, each filled with 0 when it has no targets (after a rollout the tasks
 * are in either one). aws-cdk-lib's scaleOnRequestCount tracks one target group only, and its
 * custom-metric form takes no metric math, so the policy is written at the CloudFormation level.
 */
function scaleOnRequestsAcrossTargetGroups(scaling: ecs.ScalableTaskCount, perTarget: cloudwatch.MathExpression, targetValue: number): void {
  const target = scaling.node.findAll().find((c): c is appscaling.ScalableTarget => c instanceof appscaling.ScalableTarget)!;
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
