import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwactions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Construct } from 'constructs';

/** A step-scaling action and the alarm of ours that runs it. */
export interface StepOnAlarmProps {
  /** The construct ids of the action and of the alarm. */
  readonly ids: { readonly action: string; readonly alarm: string };
  readonly action: appscaling.StepScalingActionProps;
  /** Bounds relative to the alarm's threshold, as Application Auto Scaling takes them. */
  readonly adjustments: appscaling.AdjustmentTier[];
  readonly alarm: cloudwatch.AlarmProps;
}

/**
 * A step policy driven by an alarm written here rather than by aws-cdk-lib's scaleOnMetric, which
 * derives its alarms from the intervals and always wants two of them: these policies each act on
 * one side of one threshold, with the alarm's own periods and datapoints.
 */
export function stepOnAlarm(scope: Construct, props: StepOnAlarmProps): cloudwatch.Alarm {
  const action = new appscaling.StepScalingAction(scope, props.ids.action, props.action);
  for (const adjustment of props.adjustments) action.addAdjustment(adjustment);
  const alarm = new cloudwatch.Alarm(scope, props.ids.alarm, props.alarm);
  alarm.addAlarmAction(new cwactions.ApplicationScalingAction(action));
  return alarm;
}
