import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

/** The golden-signal alarms of a model service, and which of them roll a deployment back. */
export interface ModelAlarmsOptions {
  /**
   * Whether to create the alarms. Without them, deployments are not rolled back on alarm.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * Alarm when more than this percentage of requests get a 5xx answer (from the tasks, and, on a
   * load balancer this library created, from the load balancer itself) for `evaluationMinutes`.
   * @default 5
   */
  readonly errorRatePercent?: number;
  /**
   * Alarm when the 99th percentile of the targets' response time exceeds this for `evaluationMinutes`.
   * @default Duration.seconds(1)
   */
  readonly p99Latency?: Duration;
  /**
   * How many consecutive minutes a threshold must be crossed before the alarm fires.
   * @default 3
   */
  readonly evaluationMinutes?: number;
  /**
   * Roll a deployment back when the error-rate, latency or model-start alarm fires while it runs
   * (ECS deployment alarms). For canary, linear and blue/green rollouts the alarms cover both
   * target groups, the new tasks' among them.
   * @default true
   */
  readonly rollbackOnAlarm?: boolean;
  /**
   * What to do when an alarm fires, e.g. `new cloudwatch_actions.SnsAction(topic)`.
   * @default - none: the alarms show on the dashboard and roll deployments back
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * On GPU capacity: alarm when GPU utilization (CloudWatch agent) stays above this percentage.
   * @default 90
   */
  readonly gpuUtilizationPercent?: number;
  /**
   * On GPU capacity: alarm when GPU memory in use (CloudWatch agent) stays above this percentage.
   * @default 90
   */
  readonly gpuMemoryPercent?: number;
  /**
   * On GPU capacity: alarm when no minute's GPU utilization (CloudWatch agent) reaches this
   * percentage for `gpuIdleHours`: instances paid for and not used. Scale to zero
   * (`minCapacity: 0`) or a schedule stops paying for them.
   * @default 5
   */
  readonly gpuIdlePercent?: number;
  /**
   * On GPU capacity: how many whole hours the GPUs must stay under `gpuIdlePercent` before the
   * idle alarm fires, from 1 to 24.
   * @default 3
   */
  readonly gpuIdleHours?: number;
}
