import { Duration, Stack, TimeZone } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, FargateModelServiceProps, GpuModelService, GpuModelServiceProps, ModelSource, Rollout } from '../../lib';
import { templateOf } from '../helpers/stack';

/**
 * Elastic serving at synth: scale-out on the server's 10-second concurrency metric, ECS's
 * 20-second CPU metric on request, scale to zero and wake on a request (Fargate, GPU, GPU Spot),
 * schedules, and the refusals.
 */
function model(stack: Stack, key = 'iris/model.joblib'): ModelSource {
  return ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'ModelBucket', 'team-models'), key);
}

function fargate(props: Partial<FargateModelServiceProps> = {}): Template {
  return templateOf((stack) => new FargateModelService(stack, 'Model', { model: model(stack), ...props }));
}

function gpu(props: Partial<GpuModelServiceProps> = {}): Template {
  return templateOf((stack) => new GpuModelService(stack, 'Model', { model: model(stack, 'resnet/model.pt'), ...props }));
}

function byId(template: Template, type: string, pattern: RegExp): any {
  const found = Object.entries(template.findResources(type)).filter(([id]) => pattern.test(id));
  expect(found).toHaveLength(1);
  return found[0][1];
}

/** The metrics of an alarm's math expression, by id. */
function alarmMetrics(alarm: any): Record<string, any> {
  return Object.fromEntries(alarm.Properties.Metrics.map((m: any) => [m.Id, m]));
}

describe('scale-out on what the model feels', () => {
  const template = fargate();

  test('a step policy on the server\'s 10-second ConcurrencyUtilization: 2 of 3 datapoints at 50 % add half the tasks, 90 % doubles them', () => {
    const alarm = byId(template, 'AWS::CloudWatch::Alarm', /ConcurrencyAlarm/);
    const [query] = alarm.Properties.Metrics;
    expect(query.MetricStat).toMatchObject({ Metric: { Namespace: 'CdkModelServing', MetricName: 'ConcurrencyUtilization' }, Stat: 'Average', Period: 10 });
    expect(query.MetricStat.Metric.Dimensions).toEqual([{ Name: 'Service', Value: expect.stringMatching(/^Test-Model-/) }]);
    expect(alarm.Properties).toMatchObject({
      Threshold: 50,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      TreatMissingData: 'notBreaching',
    });
    const policy = byId(template, 'AWS::ApplicationAutoScaling::ScalingPolicy', /TaskCountConcurrency[0-9A-F]{8}$/);
    expect(policy.Properties.StepScalingPolicyConfiguration).toEqual({
      AdjustmentType: 'PercentChangeInCapacity',
      MinAdjustmentMagnitude: 1,
      Cooldown: 60,
      MetricAggregationType: 'Average',
      StepAdjustments: [
        { MetricIntervalLowerBound: 0, MetricIntervalUpperBound: 40, ScalingAdjustment: 50 },
        { MetricIntervalLowerBound: 40, ScalingAdjustment: 100 },
      ],
    });
    const policyId = Object.keys(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy')).find((id) => /TaskCountConcurrency[0-9A-F]{8}$/.test(id));
    expect(alarm.Properties.AlarmActions).toEqual([{ Ref: policyId }]);
  });

  test('the threshold is a prop; at 90 % or more one step doubles the tasks', () => {
    const high = fargate({ scaleOutAtConcurrencyPercent: 95 });
    expect(byId(high, 'AWS::CloudWatch::Alarm', /ConcurrencyAlarm/).Properties.Threshold).toBe(95);
    expect(byId(high, 'AWS::ApplicationAutoScaling::ScalingPolicy', /TaskCountConcurrency[0-9A-F]{8}$/).Properties.StepScalingPolicyConfiguration.StepAdjustments)
      .toEqual([{ MetricIntervalLowerBound: 0, ScalingAdjustment: 100 }]);
  });

  test('the request-count and CPU target-tracking policies stay, on one-minute metrics unless asked', () => {
    const cpu = byId(template, 'AWS::ApplicationAutoScaling::ScalingPolicy', /TargetCpu/);
    expect(cpu.Properties.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType).toBe('ECSServiceAverageCPUUtilization');
    expect(Object.values(template.findResources('AWS::ECS::Service'))[0].Properties.MonitoringConfiguration).toBeUndefined();
  });

  test('highResolutionCpuScaling: ECS publishes CPU every 20 s and the CPU policy tracks the high-resolution metric, same logical IDs', () => {
    const fast = fargate({ highResolutionCpuScaling: true });
    const service = Object.values(fast.findResources('AWS::ECS::Service'))[0];
    expect(service.Properties.MonitoringConfiguration).toEqual({ MetricConfigurations: [{ MetricNames: ['CPUUtilization'], ResolutionSeconds: 20 }] });
    const cpu = byId(fast, 'AWS::ApplicationAutoScaling::ScalingPolicy', /TargetCpu/);
    expect(cpu.Properties.TargetTrackingScalingPolicyConfiguration).toMatchObject({
      PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilizationHighResolution' },
      TargetValue: 70,
    });
    expect(Object.keys(fast.toJSON().Resources)).toEqual(Object.keys(template.toJSON().Resources));
  });

  test('the dashboard shows the load per task and the requests shed', () => {
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody);
    expect(body).toContain('Load per task (10 s) and requests shed');
    // Per task: the per-worker Average times the task's workers (Fargate's default 1 vCPU: 1 worker).
    expect(body).toMatch(/concurrentRequests \* 1/);
    expect(body).toMatch(/queuedRequests \* 1/);
  });
});

/** The wake and idle alarms, their policies, and the scalable target of a service that scales to zero. */
function expectScaleToZero(template: Template, idleMinutes: number, startupSeconds: number): void {
  const target = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalableTarget'))[0];
  const policies = template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy');
  const policyId = (pattern: RegExp) => Object.keys(policies).find((id) => pattern.test(id));

  const wake = byId(template, 'AWS::CloudWatch::Alarm', /ScaleToZeroWakeAlarm/);
  expect(wake.Properties).toMatchObject({
    Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 1, DatapointsToAlarm: 1, TreatMissingData: 'notBreaching',
  });
  const w = alarmMetrics(wake);
  expect(w.expr_1.Expression).toBe('IF(FILL(desired, 0) < 1, FILL(refused, 0), 0)');
  // A load-balancer metric, which exists while no task does.
  expect(w.refused.MetricStat).toMatchObject({ Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'HTTPCode_ELB_503_Count' }, Stat: 'Sum', Period: 60 });
  expect(w.refused.MetricStat.Metric.Dimensions.map((d: any) => d.Name)).toEqual(['LoadBalancer']);
  expect(w.desired.MetricStat.Metric).toMatchObject({ Namespace: 'ECS/ContainerInsights', MetricName: 'DesiredTaskCount' });
  expect(wake.Properties.AlarmActions).toEqual([{ Ref: policyId(/ScaleToZeroWake[0-9A-F]{8}$/) }]);
  expect(policies[policyId(/ScaleToZeroWake[0-9A-F]{8}$/)!].Properties.StepScalingPolicyConfiguration).toEqual({
    AdjustmentType: 'ChangeInCapacity', Cooldown: startupSeconds, MetricAggregationType: 'Maximum',
    StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
  });

  const idle = byId(template, 'AWS::CloudWatch::Alarm', /ScaleToZeroIdleAlarm/);
  expect(idle.Properties).toMatchObject({
    Threshold: 1, ComparisonOperator: 'LessThanThreshold', EvaluationPeriods: idleMinutes, DatapointsToAlarm: idleMinutes, TreatMissingData: 'breaching',
  });
  const i = alarmMetrics(idle);
  expect(i.expr_1.Expression).toBe('FILL(requests, 0) + FILL(refused, 0)');
  expect(i.requests.MetricStat).toMatchObject({ Metric: { MetricName: 'RequestCount' }, Stat: 'Sum', Period: 60 });
  expect(i.requests.MetricStat.Metric.Dimensions.map((d: any) => d.Name).sort()).toEqual(['LoadBalancer', 'TargetGroup']);
  expect(idle.Properties.AlarmActions).toEqual([{ Ref: policyId(/ScaleToZeroSleep[0-9A-F]{8}$/) }]);
  expect(policies[policyId(/ScaleToZeroSleep[0-9A-F]{8}$/)!].Properties.StepScalingPolicyConfiguration).toEqual({
    AdjustmentType: 'ExactCapacity', Cooldown: 60, MetricAggregationType: 'Maximum',
    StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: 0 }],
  });
  expect(target.Properties.MinCapacity).toBe(0);
}

describe('scale to zero, and wake on a request', () => {
  test('Fargate: minCapacity 0 makes the scalable target 0, a wake alarm on the load balancer\'s 503s and an idle alarm', () => {
    expectScaleToZero(fargate({ minCapacity: 0 }), 15, 300);
  });

  test('GPU: the same, and the Auto Scaling group may reach 0 instances through the managed capacity provider', () => {
    for (const spot of [false, true]) {
      const template = gpu({ minCapacity: 0, spot, scaleToZeroAfter: Duration.minutes(45), startupTimeout: Duration.minutes(10) });
      expectScaleToZero(template, 45, 600);
      template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0' });
      template.hasResourceProperties('AWS::ECS::CapacityProvider', {
        AutoScalingGroupProvider: { ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 } },
      });
    }
  });

  test('the load balancer\'s 5xx-rate alarm leaves out its 503s, which are the wake-up, not an error', () => {
    const alarm = byId(fargate({ minCapacity: 0 }), 'AWS::CloudWatch::Alarm', /LoadBalancerErrorRate/);
    const expressions = alarm.Properties.Metrics.filter((m: any) => m.Expression).map((m: any) => m.Expression);
    expect(expressions).toContain('FILL(all5xx, 0) - FILL(refused, 0)');
    const always = byId(fargate(), 'AWS::CloudWatch::Alarm', /LoadBalancerErrorRate/);
    expect(JSON.stringify(always.Properties.Metrics)).not.toContain('HTTPCode_ELB_503_Count');
  });

  test('a service that never reaches zero has neither alarm', () => {
    const template = fargate({ minCapacity: 1 });
    expect(Object.keys(template.findResources('AWS::CloudWatch::Alarm')).filter((id) => /ScaleToZero/.test(id))).toEqual([]);
  });
});

describe('schedules', () => {
  test('scheduled actions on the scalable target, in their time zones; a schedule\'s minCapacity 0 brings the wake and idle alarms', () => {
    const template = fargate({
      minCapacity: 2,
      schedules: [
        { name: 'nights', schedule: appscaling.Schedule.cron({ hour: '20', minute: '0' }), minCapacity: 0, maxCapacity: 2, timeZone: TimeZone.EUROPE_BERLIN },
        { name: 'mornings', schedule: appscaling.Schedule.cron({ weekDay: 'MON-FRI', hour: '7', minute: '0' }), minCapacity: 2 },
      ],
    });
    const target = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalableTarget'))[0];
    expect(target.Properties.MinCapacity).toBe(2);
    expect(target.Properties.ScheduledActions).toEqual([
      { ScheduledActionName: 'nights', Schedule: 'cron(0 20 * * ? *)', ScalableTargetAction: { MinCapacity: 0, MaxCapacity: 2 }, Timezone: 'Europe/Berlin' },
      { ScheduledActionName: 'mornings', Schedule: 'cron(0 7 ? * MON-FRI *)', ScalableTargetAction: { MinCapacity: 2 } },
    ]);
    expectScaleToZeroAlarmsOnly(template);
  });
});

function expectScaleToZeroAlarmsOnly(template: Template): void {
  expect(Object.keys(template.findResources('AWS::CloudWatch::Alarm')).filter((id) => /ScaleToZero/.test(id))).toHaveLength(2);
}

describe('refused at synth, naming what to change', () => {
  const cron = appscaling.Schedule.cron({ hour: '20', minute: '0' });
  const cases: Array<[string, Partial<FargateModelServiceProps>, string]> = [
    ['a negative minCapacity', { minCapacity: -1 }, "Test/Model: invalid 'minCapacity': must be an integer from 0 to 1000, got -1"],
    ['scale to zero with a canary rollout', { minCapacity: 0, rollout: Rollout.canary() },
      "Test/Model: invalid 'minCapacity': may reach 0 tasks, which works with Rollout.rolling() only"],
    ['a schedule to zero with blue/green', { schedules: [{ name: 'nights', schedule: cron, minCapacity: 0 }], rollout: Rollout.blueGreen() },
      "Test/Model: invalid 'schedules': may reach 0 tasks, which works with Rollout.rolling() only"],
    ['scaleToZeroAfter on a service that never reaches zero', { scaleToZeroAfter: Duration.minutes(30) },
      "Test/Model: invalid 'scaleToZeroAfter': applies to a service that may scale to zero: set minCapacity (or a schedule's) to 0, or drop scaleToZeroAfter"],
    ['an idle time under 5 minutes', { minCapacity: 0, scaleToZeroAfter: Duration.minutes(2) },
      "Test/Model: invalid 'scaleToZeroAfter': must be from 5 minutes to 1 day, got 2 minutes"],
    ['an idle time in seconds', { minCapacity: 0, scaleToZeroAfter: Duration.seconds(330) },
      "Test/Model: invalid 'scaleToZeroAfter': must be whole minutes (the idle alarm counts one-minute periods), got 5 minutes 30 seconds"],
    ['a concurrency threshold under 10', { scaleOutAtConcurrencyPercent: 5 },
      "Test/Model: invalid 'scaleOutAtConcurrencyPercent': must be an integer from 10 to 100, got 5"],
    ['a schedule without capacities', { schedules: [{ name: 'nights', schedule: cron }] },
      "Test/Model: invalid 'schedules[0]': changes nothing: give minCapacity, maxCapacity or both"],
    ['two schedules of one name', { schedules: [{ name: 'n', schedule: cron, minCapacity: 1 }, { name: 'n', schedule: cron, maxCapacity: 3 }] },
      "Test/Model: invalid 'schedules[1].name': 'n' is taken by an earlier schedule; give each a name of its own"],
    ['a schedule name with spaces', { schedules: [{ name: 'late nights', schedule: cron, minCapacity: 1 }] },
      "Test/Model: invalid 'schedules[0].name': must be 1-64 letters, digits, '-' or '_', got 'late nights'"],
    ['a schedule with min above max', { schedules: [{ name: 'n', schedule: cron, minCapacity: 3, maxCapacity: 2 }] },
      "Test/Model: invalid 'schedules[0].minCapacity': (3) must not exceed its maxCapacity (2)"],
  ];
  test.each(cases)('%s', (_name, props, message) => {
    expect(() => fargate(props)).toThrow(message);
  });
});

describe('the idle-GPU alarm', () => {
  test('no minute at 5 % GPU utilization for 3 hours; thresholds are props; not a deployment alarm', () => {
    for (const [options, pct, hours] of [[{}, 5, 3], [{ gpuIdlePercent: 10, gpuIdleHours: 8 }, 10, 8]] as const) {
      const template = gpu({ alarms: options });
      const alarm = byId(template, 'AWS::CloudWatch::Alarm', /AlarmsGpuIdle/);
      expect(alarm.Properties.Metrics[0].MetricStat).toMatchObject({ Metric: { MetricName: 'nvidia_smi_utilization_gpu' }, Stat: 'Maximum', Period: 3600 });
      expect(alarm.Properties).toMatchObject({
        Threshold: pct, ComparisonOperator: 'LessThanThreshold', EvaluationPeriods: hours, DatapointsToAlarm: hours, TreatMissingData: 'notBreaching',
      });
      const service = Object.values(template.findResources('AWS::ECS::Service'))[0];
      expect(service.Properties.DeploymentConfiguration.Alarms.AlarmNames).not.toContain(alarm.Properties.AlarmName);
    }
  });

  test('Fargate has none, and the hours are bounded', () => {
    expect(Object.keys(fargate().findResources('AWS::CloudWatch::Alarm')).filter((id) => /GpuIdle/.test(id))).toEqual([]);
    expect(() => gpu({ alarms: { gpuIdleHours: 30 } })).toThrow("Test/Model: invalid 'alarms.gpuIdleHours': must be an integer from 1 to 24, got 30");
  });
});
