import { Duration } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { stepOnAlarm } from './step-on-alarm';

/** What scaling to zero and waking up need to know of a service. */
export interface ScaleToZeroProps {
  readonly scalableTarget: appscaling.IScalableTarget;
  /** Requests the load balancer sent to the tasks (Sum per minute). */
  readonly requests: cloudwatch.IMetric;
  /**
   * 503s the load balancer answered itself (HTTPCode_ELB_503_Count, Sum per minute): what a
   * request to a target group without targets gets. A load-balancer metric, so it exists while no
   * task does (a per-task metric has no data then).
   */
  readonly refusedByLoadBalancer: cloudwatch.IMetric;
  /** The tasks ECS wants running (Container Insights; no data counts as none). */
  readonly desiredTasks: cloudwatch.IMetric;
  /** How long the service goes without requests before it scales to zero (whole minutes). */
  readonly idleAfter: Duration;
  /** How long a task may take to start: one wake does not add a second task within it. */
  readonly startupTimeout: Duration;
}

/**
 * Scale to zero, and wake on the next request, with two alarms and two step policies:
 *
 * - Wake: the first minute in which the load balancer answered a request 503 while ECS wanted no
 *   task (`IF(desired < 1, refused, 0) >= 1`) adds one task. Its cooldown is the startup timeout,
 *   so the alarm, which re-runs its action every minute while it stays in ALARM, does not stack a
 *   second task on a wake under way.
 * - Idle: `idleAfter` of consecutive minutes without a request to the tasks, nor one refused
 *   (no data counts as idle, since the load balancer publishes nothing for an idle minute), sets
 *   the task count to 0. A refused request counts as traffic, so the minute that wakes the service
 *   also ends its idleness.
 */
export class ScaleToZero extends Construct {
  public readonly wakeAlarm: cloudwatch.Alarm;
  public readonly idleAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: ScaleToZeroProps) {
    super(scope, id);
    const minute = Duration.minutes(1);

    this.wakeAlarm = stepOnAlarm(this, {
      ids: { action: 'Wake', alarm: 'WakeAlarm' },
      action: {
        scalingTarget: props.scalableTarget,
        adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown: props.startupTimeout,
        metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
      },
      adjustments: [{ adjustment: 1, lowerBound: 0 }],
      alarm: {
        alarmDescription: 'A request reached the load balancer while the service had no task: start one.',
        metric: new cloudwatch.MathExpression({
          expression: 'IF(FILL(desired, 0) < 1, FILL(refused, 0), 0)',
          usingMetrics: { desired: props.desiredTasks, refused: props.refusedByLoadBalancer },
          label: 'Requests refused while at zero tasks',
          period: minute,
        }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        datapointsToAlarm: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    });

    const minutes = props.idleAfter.toMinutes();
    this.idleAlarm = stepOnAlarm(this, {
      ids: { action: 'Sleep', alarm: 'IdleAlarm' },
      action: {
        scalingTarget: props.scalableTarget,
        adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
        cooldown: minute,
        metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
      },
      adjustments: [{ adjustment: 0, upperBound: 0 }],
      alarm: {
        alarmDescription: `No request for ${minutes} minutes: scale to zero tasks.`,
        metric: new cloudwatch.MathExpression({
          expression: 'FILL(requests, 0) + FILL(refused, 0)',
          usingMetrics: { requests: props.requests, refused: props.refusedByLoadBalancer },
          label: 'Requests, served or refused',
          period: minute,
        }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: minutes,
        datapointsToAlarm: minutes,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    });
  }
}
