import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  FargateModelService, GoldenRequests, GpuModelService, ModelServiceBaseProps, ModelSource, Rollout, ServingImage,
} from '../../lib';
import { SAMPLE_GOLDEN_FILE } from '../../lib/asset-paths';
import { containers, envOf, templateOf } from '../helpers/stack';

/**
 * Rollout strategies, golden-request hooks, alarms with deployment rollback, metrics and the
 * dashboard, as the templates show them, on Fargate and on GPU capacity.
 */
function model(stack: Stack): ModelSource {
  return ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'ModelBucket', 'team-models'), 'iris/model.joblib');
}

type Compute = 'fargate' | 'gpu';

function synth(compute: Compute, props: Partial<ModelServiceBaseProps> = {}, setup?: (stack: Stack) => Partial<ModelServiceBaseProps>): Template {
  return templateOf((stack) => {
    const all = { model: model(stack), ...props, ...setup?.(stack) };
    return compute === 'gpu' ? new GpuModelService(stack, 'Model', all) : new FargateModelService(stack, 'Model', all);
  });
}

function only(template: Template, type: string): any {
  const found = Object.values(template.findResources(type));
  expect(found).toHaveLength(1);
  return found[0];
}

/** The golden-signal alarms: every alarm but those that drive scaling (below the service's task count). */
function operationalAlarms(template: Template): any[] {
  return Object.entries(template.findResources('AWS::CloudWatch::Alarm')).filter(([id]) => !/ServiceTaskCount/.test(id)).map(([, a]) => a);
}

function byId(template: Template, type: string, idPart: string): any {
  const found = Object.entries(template.findResources(type)).filter(([id]) => id.includes(idPart));
  expect(found).toHaveLength(1);
  return found[0][1];
}

function logicalId(template: Template, type: string, idPart: string): string {
  const found = Object.keys(template.findResources(type)).filter((id) => id.includes(idPart));
  expect(found).toHaveLength(1);
  return found[0];
}

const STRATEGIES: Array<[string, () => Rollout, Record<string, unknown>]> = [
  ['canary', () => Rollout.canary({ percent: 5, canaryBakeTime: Duration.minutes(3) }),
    { Strategy: 'CANARY', BakeTimeInMinutes: 10, CanaryConfiguration: { CanaryPercent: 5, CanaryBakeTimeInMinutes: 3 } }],
  ['linear', () => Rollout.linear({ stepPercent: 25, interval: Duration.minutes(2), bakeTime: Duration.minutes(15) }),
    { Strategy: 'LINEAR', BakeTimeInMinutes: 15, LinearConfiguration: { StepPercent: 25, StepBakeTimeInMinutes: 2 } }],
  ['blueGreen', () => Rollout.blueGreen({ bakeTime: Duration.minutes(30) }), { Strategy: 'BLUE_GREEN', BakeTimeInMinutes: 30 }],
];

describe.each(['fargate', 'gpu'] as const)('on %s', (compute) => {
  describe('rolling (the default)', () => {
    let template: Template;
    beforeAll(() => {
      template = synth(compute);
    });

    test('tasks are replaced in place, the circuit breaker and the deployment alarms roll back', () => {
      const service = only(template, 'AWS::ECS::Service');
      expect(service.Properties.DeploymentConfiguration).toMatchObject({
        Strategy: 'ROLLING',
        MinimumHealthyPercent: 100,
        MaximumPercent: 200,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        Alarms: {
          Enable: true,
          Rollback: true,
          AlarmNames: [expect.stringMatching(/^Test-Model-[0-9A-F]{8}-TargetErrorRate$/), expect.stringMatching(/-P99Latency$/), expect.stringMatching(/-ModelStartFailures$/)],
        },
      });
      // Named alarms, which the service waits for.
      for (const id of ['TargetErrorRate', 'P99Latency', 'ModelStartFailures']) {
        const alarmId = logicalId(template, 'AWS::CloudWatch::Alarm', id);
        expect(template.findResources('AWS::CloudWatch::Alarm')[alarmId].Properties.AlarmName).toMatch(new RegExp(`^Test-Model-[0-9A-F]{8}-${id}$`));
        expect(service.DependsOn).toContain(alarmId);
      }
      expect(service.Properties.LoadBalancers).toHaveLength(1);
      expect(service.Properties.LoadBalancers[0].AdvancedConfiguration).toBeUndefined();
    });

    test('one target group, no test rule, the listener forwards to it', () => {
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::TargetGroup', 1);
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::ListenerRule', 0);
      template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
        TargetTrackingScalingPolicyConfiguration: { PredefinedMetricSpecification: { PredefinedMetricType: 'ALBRequestCountPerTarget' } },
      });
    });

    test('the alarms watch the one target group', () => {
      const errorRate = byId(template, 'AWS::CloudWatch::Alarm', 'TargetErrorRate');
      expect(errorRate.Properties).toMatchObject({ Threshold: 5, EvaluationPeriods: 3, DatapointsToAlarm: 3, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching' });
      const ids = errorRate.Properties.Metrics.map((m: any) => m.Id);
      expect(ids).toEqual(expect.arrayContaining(['expr_1', 'errors', 'shed', 'requests']));
      // The 503s a task answers on purpose when it sheds load (the server's RequestsShed) are not
      // the model's errors: under overload they do not roll a deployment back.
      expect(errorRate.Properties.Metrics.find((m: any) => m.Id === 'expr_1').Expression)
        .toBe('IF(requests > 0, 100 * IF(errors > FILL(shed, 0), errors - FILL(shed, 0), 0) / requests, 0)');
      expect(errorRate.Properties.Metrics.find((m: any) => m.Id === 'shed').MetricStat)
        .toMatchObject({ Metric: { Namespace: 'CdkModelServing', MetricName: 'RequestsShed' }, Stat: 'Sum', Period: 60 });
      const p99 = byId(template, 'AWS::CloudWatch::Alarm', 'P99Latency');
      expect(p99.Properties.Threshold).toBe(1);
      expect(p99.Properties.Metrics).toEqual([expect.objectContaining({
        MetricStat: expect.objectContaining({ Metric: expect.objectContaining({ Namespace: 'AWS/ApplicationELB', MetricName: 'TargetResponseTime' }), Stat: 'p99' }),
      })]);
    });
  });

  describe.each(STRATEGIES)('%s', (_name, rollout, expected) => {
    let template: Template;
    beforeAll(() => {
      template = synth(compute, { rollout: rollout(), goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE) });
    });

    test('ECS runs the strategy with its bake time and steps, and rolls back on the alarms; no circuit breaker', () => {
      const config = only(template, 'AWS::ECS::Service').Properties.DeploymentConfiguration;
      expect(config).toMatchObject({ ...expected, Alarms: { Enable: true, Rollback: true, AlarmNames: expect.any(Array) } });
      expect(config.Alarms.AlarmNames).toHaveLength(3);
      expect(config.DeploymentCircuitBreaker).toBeUndefined();
    });

    test('an alternate target group, a weighted production rule and a test rule reachable from the VPC with the test header', () => {
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::TargetGroup', 2);
      const primary = logicalId(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'EndpointTargetGroup');
      const alternate = logicalId(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'AlternateTargetGroup');
      const weighted = [{
        Type: 'forward',
        ForwardConfig: { TargetGroups: [{ TargetGroupArn: { Ref: primary }, Weight: 100 }, { TargetGroupArn: { Ref: alternate }, Weight: 0 }] },
      }];
      const production = byId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'ProductionRule');
      expect(production.Properties).toMatchObject({ Priority: 10, Actions: weighted, Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/*'] } }] });
      const testRule = byId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'TestRule');
      expect(testRule.Properties).toMatchObject({
        Priority: 5,
        Actions: weighted,
        Conditions: [
          { Field: 'path-pattern', PathPatternConfig: { Values: ['/*'] } },
          { Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'x-model-serving-test', Values: [testHeaderValue(template)] } },
          { Field: 'source-ip', SourceIpConfig: { Values: [{ 'Fn::GetAtt': [expect.stringMatching(/^ModelVpc/), 'CidrBlock'] }] } },
        ],
      });
      // Every listener action is a forward, as ECS needs for traffic shifting.
      const listener = only(template, 'AWS::ElasticLoadBalancingV2::Listener');
      expect(listener.Properties.DefaultActions).toEqual([{ Type: 'forward', TargetGroupArn: { Ref: primary } }]);
    });

    test('the service names the alternate target group, both rules and a load-balancer role, and does not DependsOn the rules it names', () => {
      const service = only(template, 'AWS::ECS::Service');
      expect(service.Properties.LoadBalancers).toEqual([{
        ContainerName: 'server',
        ContainerPort: 8080,
        TargetGroupArn: { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'EndpointTargetGroup') },
        AdvancedConfiguration: {
          AlternateTargetGroupArn: { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'AlternateTargetGroup') },
          ProductionListenerRule: { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'ProductionRule') },
          TestListenerRule: { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'TestRule') },
          RoleArn: { 'Fn::GetAtt': [logicalId(template, 'AWS::IAM::Role', 'LoadBalancerRole'), 'Arn'] },
        },
      }]);
      expect(service.DependsOn.filter((d: string) => /Rule/.test(d))).toEqual([]);
    });

    test('the load-balancer role may change this service\'s listener, rules and target groups only', () => {
      const role = byId(template, 'AWS::IAM::Role', 'LoadBalancerRole');
      expect(role.Properties.AssumeRolePolicyDocument.Statement[0].Principal).toEqual({ Service: 'ecs.amazonaws.com' });
      // ECS, on behalf of this account's ECS resources in this region only (the confused-deputy guard).
      expect(role.Properties.AssumeRolePolicyDocument.Statement[0].Condition).toEqual({
        StringEquals: { 'aws:SourceAccount': '123456789012' },
        ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ecs:eu-west-1:123456789012:*']] } },
      });
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      const policy = byId(template, 'AWS::IAM::Policy', 'LoadBalancerRole');
      const statements = policy.Properties.PolicyDocument.Statement.map((s: any) => [s.Sid, s.Action, s.Resource]);
      expect(statements).toEqual([
        ['ReadLoadBalancer', ['elasticloadbalancing:DescribeListeners', 'elasticloadbalancing:DescribeRules', 'elasticloadbalancing:DescribeTargetGroups', 'elasticloadbalancing:DescribeTargetHealth'], '*'],
        ['RegisterTasks', ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'], [
          { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'EndpointTargetGroup') },
          { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::TargetGroup', 'AlternateTargetGroup') },
        ]],
        ['ShiftTraffic', ['elasticloadbalancing:ModifyListener', 'elasticloadbalancing:ModifyRule'], [
          { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::Listener', 'Listener') },
          { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'ProductionRule') },
          { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'TestRule') },
        ]],
      ]);
    });

    test('the golden-request hook runs after test traffic shifts, in the VPC, invoked by ECS through a role that may invoke it alone', () => {
      const fnId = logicalId(template, 'AWS::Lambda::Function', 'GoldenRequestsHandler');
      const fn = template.findResources('AWS::Lambda::Function')[fnId];
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        VpcConfig: { SubnetIds: expect.any(Array), SecurityGroupIds: [{ 'Fn::GetAtt': [expect.stringMatching(/GoldenRequestsSecurityGroup/), 'GroupId'] }] },
        Environment: {
          Variables: {
            GOLDEN_BUCKET: expect.anything(),
            GOLDEN_KEY: expect.stringMatching(/\.jsonl$/),
            LISTENER_ARN: { Ref: logicalId(template, 'AWS::ElasticLoadBalancingV2::Listener', 'Listener') },
            ROUTE_PREFIX: '',
            TEST_HEADER: 'x-model-serving-test',
            // The same secret value the test rule wants, resolved by CloudFormation into both.
            TEST_HEADER_VALUE: testHeaderValue(template),
            MAX_LATENCY_MS: '1000',
          },
        },
      });
      const hooks = only(template, 'AWS::ECS::Service').Properties.DeploymentConfiguration.LifecycleHooks;
      const invokeRole = logicalId(template, 'AWS::IAM::Role', 'GoldenRequestsInvokeRole');
      expect(hooks).toEqual([{ HookTargetArn: { 'Fn::GetAtt': [fnId, 'Arn'] }, LifecycleStages: ['POST_TEST_TRAFFIC_SHIFT'], RoleArn: { 'Fn::GetAtt': [invokeRole, 'Arn'] } }]);
      const invokePolicy = byId(template, 'AWS::IAM::Policy', 'GoldenRequestsInvokeRole');
      expect(invokePolicy.Properties.PolicyDocument.Statement).toEqual([{ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [fnId, 'Arn'] } }]);
    });

    test('the hook\'s own role: its log, its network interfaces, the golden file\'s object, the listener and load balancer addresses', () => {
      const policy = byId(template, 'AWS::IAM::Policy', 'GoldenRequestsHandlerRole');
      const statements = policy.Properties.PolicyDocument.Statement.map((s: any) => [s.Sid, s.Action, s.Resource]);
      expect(statements).toEqual([
        [undefined, ['logs:CreateLogStream', 'logs:PutLogEvents'], { 'Fn::GetAtt': [expect.stringMatching(/GoldenRequestsHandlerLogs/), 'Arn'] }],
        ['VpcNetworkInterfaces', expect.arrayContaining(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']), '*'],
        ['ReadGoldenFile', 's3:GetObject', { 'Fn::Join': ['', expect.arrayContaining([expect.stringMatching(/\.jsonl$/)])] }],
        ['FindTheLoadBalancer', ['elasticloadbalancing:DescribeListeners', 'ec2:DescribeNetworkInterfaces'], '*'],
      ]);
      template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
      const fn = byId(template, 'AWS::Lambda::Function', 'GoldenRequestsHandler');
      expect(fn.Properties.ManagedPolicyArns).toBeUndefined();
    });

    test('request-count scaling follows the tasks into either target group', () => {
      const policy = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalingPolicy'))
        .find((p: any) => p.Properties.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification)!;
      const spec = policy.Properties.TargetTrackingScalingPolicyConfiguration;
      expect(spec.TargetValue).toBe(3000);
      const metrics = spec.CustomizedMetricSpecification.Metrics;
      expect(metrics).toHaveLength(3);
      expect(metrics[2]).toEqual({ Id: 'perTask', Expression: 'FILL(requestcountpertargetsum0, 0) + FILL(requestcountpertargetsum1, 0)', Label: 'Requests per task', ReturnData: true });
      expect(metrics[0].MetricStat).toMatchObject({ Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'RequestCountPerTarget' }, Stat: 'Sum' });
      expect(metrics.slice(0, 2).map((m: any) => m.ReturnData)).toEqual([false, false]);
    });

    test('the error-rate and latency alarms cover both target groups, the new tasks\' among them', () => {
      const errorRate = byId(template, 'AWS::CloudWatch::Alarm', 'TargetErrorRate');
      const expressions = errorRate.Properties.Metrics.filter((m: any) => m.Expression).map((m: any) => m.Expression);
      expect(expressions).toEqual(expect.arrayContaining([
        'IF(requests > 0, 100 * IF(errors > FILL(shed, 0), errors - FILL(shed, 0), 0) / requests, 0)',
        'FILL(httpcodetarget5xxcountsum0, 0) + FILL(httpcodetarget5xxcountsum1, 0)',
        'FILL(requestcountsum0, 0) + FILL(requestcountsum1, 0)',
      ]));
      const targetGroups = errorRate.Properties.Metrics.filter((m: any) => m.MetricStat && m.Id !== 'shed')
        .map((m: any) => m.MetricStat.Metric.Dimensions.find((d: any) => d.Name === 'TargetGroup').Value);
      expect(JSON.stringify(targetGroups)).toMatch(/AlternateTargetGroup/);
      const p99 = byId(template, 'AWS::CloudWatch::Alarm', 'P99Latency');
      expect(p99.Properties.Metrics.find((m: any) => m.Expression).Expression).toBe('MAX([FILL(targetresponsetimep990, 0), FILL(targetresponsetimep991, 0)])');
    });
  });

  test('on a shared listener, the rules take the given priorities and the service\'s path', () => {
    const template = synth(compute, { rollout: Rollout.blueGreen() }, (stack) => {
      const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 });
      const listener = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc }).addListener('Http', { port: 80, defaultAction: elbv2.ListenerAction.fixedResponse(404) });
      return { vpc, existingListener: { listener, priority: 40, testPriority: 39, pathPrefix: '/models/iris' } };
    });
    const production = byId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'ProductionRule');
    expect(production.Properties).toMatchObject({ Priority: 40, Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/models/iris/*'] } }] });
    const testRule = byId(template, 'AWS::ElasticLoadBalancingV2::ListenerRule', 'TestRule');
    expect(testRule.Properties.Priority).toBe(39);
    expect(testRule.Properties.Conditions[0]).toEqual({ Field: 'path-pattern', PathPatternConfig: { Values: ['/models/iris/*'] } });
    for (const tg of Object.values(template.findResources('AWS::ElasticLoadBalancingV2::TargetGroup'))) {
      expect(tg.Properties.HealthCheckPath).toBe('/models/iris/health');
    }
  });
});

describe('aws/aws-cdk#36649: a new model never touches the rules whose weights ECS moves', () => {
  function synthWith(modelFile: string): Template {
    return templateOf((stack) => new FargateModelService(stack, 'Model', {
      model: ModelSource.fromAsset(modelFile), rollout: Rollout.canary(), goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE),
    }));
  }

  test('a second synth with another model: the task definition changes; rules, target groups, listener and the service\'s load balancer wiring do not', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'models-'));
    const [v1, v2] = ['v1.joblib', 'v2.joblib'].map((f, i) => {
      fs.writeFileSync(path.join(dir, f), `model bytes ${i}`);
      return path.join(dir, f);
    });
    const [a, b] = [synthWith(v1), synthWith(v2)];
    const serverEnv = (t: Template) => envOf(containers(t).server);
    expect(serverEnv(a).MODEL_VERSION).not.toEqual(serverEnv(b).MODEL_VERSION);
    expect(a.findResources('AWS::ECS::TaskDefinition')).not.toEqual(b.findResources('AWS::ECS::TaskDefinition'));
    for (const type of ['AWS::ElasticLoadBalancingV2::ListenerRule', 'AWS::ElasticLoadBalancingV2::TargetGroup', 'AWS::ElasticLoadBalancingV2::Listener']) {
      expect(Object.keys(a.findResources(type)).length).toBeGreaterThan(0);
      expect(b.findResources(type)).toEqual(a.findResources(type));
    }
    const wiring = (t: Template) => only(t, 'AWS::ECS::Service').Properties.LoadBalancers;
    expect(wiring(b)).toEqual(wiring(a));
  });
});

describe('alarms, metrics and the dashboard', () => {
  test('thresholds, evaluation and an alarm action are configurable; the load balancer\'s 5xx rate is watched on a new one', () => {
    const template = synth('fargate', {}, (stack) => ({
      alarms: { errorRatePercent: 2, p99Latency: Duration.millis(250), evaluationMinutes: 5, alarmAction: new actions.SnsAction(new sns.Topic(stack, 'Pager', { enforceSSL: true })) },
    }));
    expect(byId(template, 'AWS::CloudWatch::Alarm', 'TargetErrorRate').Properties).toMatchObject({ Threshold: 2, EvaluationPeriods: 5 });
    expect(byId(template, 'AWS::CloudWatch::Alarm', 'P99Latency').Properties).toMatchObject({ Threshold: 0.25, EvaluationPeriods: 5 });
    const lbRate = byId(template, 'AWS::CloudWatch::Alarm', 'LoadBalancerErrorRate');
    expect(JSON.stringify(lbRate.Properties.Metrics)).toMatch(/HTTPCode_ELB_5XX_Count/);
    const alarms = operationalAlarms(template);
    expect(alarms.map((a: any) => a.Properties.AlarmDescription).sort()).toEqual([
      'A task failed to download or load its model (model-fetcher errors, "model failed to load")',
      'Fewer tasks running than desired (Container Insights)',
      'More than 2% of requests answered 5xx by the load balancer (no healthy target, timeouts)',
      'More than 2% of requests answered 5xx by the model tasks',
      'Targets failing the /health check',
      'p99 response time above 250 ms',
    ]);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^Pager/) }]);
  });

  test('the model start-failure alarm counts the containers\' failure lines', () => {
    const template = synth('fargate');
    const filter = only(template, 'AWS::Logs::MetricFilter');
    expect(filter.Properties.FilterPattern).toBe('{ $.event = "model_start_failed" }');
    expect(filter.Properties.MetricTransformations).toEqual([expect.objectContaining({ MetricNamespace: 'CdkModelServing', MetricValue: '1', DefaultValue: 0 })]);
  });

  test('alarms off: none, and no deployment alarms; rollbackOnAlarm off: alarms that do not roll back', () => {
    const off = synth('fargate', { alarms: { enabled: false } });
    expect(operationalAlarms(off)).toEqual([]);
    // Scaling's own alarm is not a golden-signal alarm: it stays.
    expect(Object.keys(off.findResources('AWS::CloudWatch::Alarm'))).toEqual([expect.stringMatching(/ServiceTaskCountConcurrencyAlarm/)]);
    expect(only(off, 'AWS::ECS::Service').Properties.DeploymentConfiguration.Alarms).toEqual({ AlarmNames: [], Enable: false, Rollback: false });
    const noRollback = synth('fargate', { alarms: { rollbackOnAlarm: false } });
    expect(Object.keys(noRollback.findResources('AWS::CloudWatch::Alarm')).length).toBeGreaterThan(3);
    expect(only(noRollback, 'AWS::ECS::Service').Properties.DeploymentConfiguration.Alarms.Enable).toBe(false);
  });

  test('one dashboard: traffic, latency, errors, tasks, CPU and memory, model latency and batches, versions, alarms', () => {
    const template = synth('fargate');
    const body = JSON.stringify(only(template, 'AWS::CloudWatch::Dashboard').Properties.DashboardBody);
    for (const title of ['Requests and 5xx', 'Latency', '5xx rate', 'Tasks', 'CPU and memory', 'Time in the model', 'Rows per model call', 'Requests by model version', 'Model versions serving', 'Alarms']) {
      expect(body).toContain(title);
    }
    expect(body.replace(/\\/g, '')).toMatch(/SEARCH\('\{CdkModelServing,Service,ModelVersion\} MetricName="Requests" Service="Test-Model-[0-9A-F]{8}"'/);
    expect(body).toContain('stats count(*) as requests, max(@timestamp) as last_seen by model_version');
    synth('fargate', { dashboard: false }).resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });

  test('on GPU capacity: the CloudWatch agent publishes GPU utilization and memory, which alarms and the dashboard use', () => {
    const template = synth('gpu');
    const lt = only(template, 'AWS::EC2::LaunchTemplate');
    const userData = JSON.stringify(lt.Properties.LaunchTemplateData.UserData);
    expect(userData).toContain('dnf install -y -q amazon-cloudwatch-agent');
    // The user data is a script bash accepts (references rendered as placeholders), the agent set up in the background.
    const parts = lt.Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1];
    const script = parts.map((p: unknown) => (typeof p === 'string' ? p : 'X')).join('');
    expect(spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' }).status).toBe(0);
    expect(script).toMatch(/\) >>\/var\/log\/gpu-metrics-agent\.log 2>&1 &\n/);
    expect(userData).toMatch(/nvidia_gpu.*utilization_gpu.*memory_used.*memory_total/);
    expect(userData.replace(/\\/g, '')).toMatch(/"append_dimensions":\{"Service":"Test-Model-[0-9A-F]{8}"\}/);
    const utilization = byId(template, 'AWS::CloudWatch::Alarm', 'GpuUtilization').Properties;
    expect(utilization.Threshold).toBe(90);
    expect(utilization.Metrics[0].MetricStat.Metric).toMatchObject({ MetricName: 'nvidia_smi_utilization_gpu', Namespace: 'CWAgent', Dimensions: [{ Name: 'Service', Value: expect.stringMatching(/^Test-Model-/) }] });
    const memory = byId(template, 'AWS::CloudWatch::Alarm', 'GpuMemory');
    expect(memory.Properties.Metrics.find((m: any) => m.Expression).Expression).toBe('100 * used / total');
    expect(JSON.stringify(only(template, 'AWS::CloudWatch::Dashboard').Properties.DashboardBody)).toContain('GPU utilization and memory in use');
  });

  test('metric methods in aws-cdk-lib\'s style', () => {
    const stack = new Stack(undefined, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    const service = new FargateModelService(stack, 'Model', { model: model(stack), rollout: Rollout.blueGreen() });
    const config = (m: cloudwatch.IMetric) => m.toMetricConfig();
    expect(config(service.metricLatency(50)).mathExpression?.expression).toBe('MAX([FILL(targetresponsetimep500, 0), FILL(targetresponsetimep501, 0)])');
    expect(config(service.metricModelLatency()).metricStat).toMatchObject({ namespace: 'CdkModelServing', metricName: 'ModelLatency', statistic: 'p99' });
    expect(config(service.metricRowsPerBatch()).metricStat).toMatchObject({ metricName: 'RowsPerBatch', dimensions: [{ name: 'Service', value: service.metricsServiceName }] });
    expect(config(service.metricRunningTasks()).metricStat).toMatchObject({ namespace: 'ECS/ContainerInsights', metricName: 'RunningTaskCount' });
    expect(() => service.metricLatency(100)).toThrow(/^S\/Model: invalid 'percentile': must be between 0 and 100, got 100/);
    // Alarms of one's own, on the construct's metrics.
    new cloudwatch.Alarm(stack, 'Mine', { metric: service.metricRequestsRejected(), threshold: 10, evaluationPeriods: 1 });
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'RequestsRejected', Namespace: 'CdkModelServing' });
  });
});

describe('the model version', () => {
  test('defaults to the model file\'s checksum; the image\'s, then the service\'s own label, take precedence', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-'));
    const file = path.join(dir, 'model.joblib');
    fs.writeFileSync(file, 'model bytes');
    const sha = crypto.createHash('sha256').update('model bytes').digest('hex');
    const version = (props: Partial<ModelServiceBaseProps>) => envOf(containers(templateOf((stack) =>
      new FargateModelService(stack, 'Model', { model: ModelSource.fromAsset(file), ...props }))).server).MODEL_VERSION;
    expect(version({})).toBe(sha.slice(0, 12));
    expect(version({ image: ServingImage.fromModelServer({ modelVersion: 'iris-2026-11' }) })).toBe('iris-2026-11');
    expect(version({ image: ServingImage.fromModelServer({ modelVersion: 'iris-2026-11' }), modelVersion: 'iris-v4' })).toBe('iris-v4');
    // Without a checksum: the object's key, or the prefix without its slash.
    expect(version({ model: ModelSource.fromS3Uri('s3://team-models/resnet/v2/') })).toBe('resnet/v2');
    expect(version({ model: ModelSource.fromS3Uri('s3://team-models/iris/v3/model.joblib') })).toBe('iris/v3/model.joblib');
  });
});

describe('invalid props fail at synth with what to change', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['golden requests with a rolling rollout', () => synth('fargate', { goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE) }),
      /invalid 'goldenRequests': are checked against the new tasks .* set rollout to Rollout.canary\(\), Rollout.linear\(\) or Rollout.blueGreen\(\)/],
    ['a shared listener at priority 1, with no priority below it for the test rule', () => synth('fargate', { rollout: Rollout.canary() }, (stack) => ({
      existingListener: { listener: elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'L', { listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/a/1/2', securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1') }), priority: 1, pathPrefix: '/m' },
    })), /invalid 'existingListener.testPriority': is needed by the side-by-side rollout.*below 1\b/],
    ['a test priority after the production rule', () => synth('fargate', { rollout: Rollout.canary() }, (stack) => ({
      existingListener: { listener: elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'L', { listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/a/1/2', securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1') }), priority: 10, testPriority: 10, pathPrefix: '/m' },
    })), /invalid 'existingListener.testPriority': \(10\) must be lower than priority \(10\)/],
    ['a test priority without a side-by-side rollout', () => synth('fargate', {}, (stack) => ({
      existingListener: { listener: elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'L', { listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/a/1/2', securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1') }), priority: 10, testPriority: 5, pathPrefix: '/m' },
    })), /invalid 'existingListener.testPriority': applies only to a side-by-side rollout/],
    ['a canary of 0 %', () => Rollout.canary({ percent: 0 }), /Rollout.canary: invalid 'percent': must be from 0.1 to 99.9 percent in steps of 0.1, got 0/],
    ['a linear step of 2.5 %', () => Rollout.linear({ stepPercent: 2.5 }), /Rollout.linear: invalid 'stepPercent': must be from 3 to 100/],
    ['a bake time of 90 s', () => Rollout.blueGreen({ bakeTime: Duration.seconds(90) }), /Rollout.blueGreen: invalid 'bakeTime': must be whole minutes from 0 to 1440, got 1 minute 30 seconds/],
    ['a model version with a space', () => synth('fargate', { modelVersion: 'iris v4' }), /invalid 'modelVersion': must be 1-128 printable ASCII characters without spaces/],
    ['an error rate of 0', () => synth('fargate', { alarms: { errorRatePercent: 0 } }), /invalid 'alarms.errorRatePercent': must be more than 0 and at most 100, got 0/],
    ['thresholds with the alarms off', () => synth('fargate', { alarms: { enabled: false, p99Latency: Duration.seconds(2) } }), /invalid 'alarms.p99Latency': has no effect with alarms.enabled: false/],
    ['a malformed golden file', () => {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'golden-')), 'golden.jsonl');
      fs.writeFileSync(file, '{"request": {"features": [1]}, "expect": {"prediction": 1}}\n{"request": {"features": [1]}}\n');
      return GoldenRequests.fromFile(file);
    }, /GoldenRequests.fromFile: invalid 'filePath': .*golden.jsonl: golden requests line 2: needs "expect"/],
    ['a missing golden file', () => GoldenRequests.fromFile('/nonexistent/golden.jsonl'), /\/nonexistent\/golden.jsonl is not a file/],
  ];
  test.each(cases)('%s', (_name, make, message) => {
    expect(make).toThrow(message);
  });
});

test('on a shared listener, the load-balancer role may change this service\'s two rules, never the platform\'s listener', () => {
  const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
  const listener = elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'L', {
    listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shared/1/2',
    securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0'),
  });
  new FargateModelService(stack, 'Model', { model: model(stack), rollout: Rollout.canary(), existingListener: { listener, priority: 10, pathPrefix: '/iris' } });
  const template = Template.fromStack(stack);
  const policy = byId(template, 'AWS::IAM::Policy', 'LoadBalancerRole');
  const shift = policy.Properties.PolicyDocument.Statement.find((st: any) => st.Sid === 'ShiftTraffic');
  expect(shift.Action).toBe('elasticloadbalancing:ModifyRule');
  expect(JSON.stringify(shift.Resource)).not.toContain('listener/app/shared');
  expect(shift.Resource).toHaveLength(2);
});

/**
 * The test rule's header value: a dynamic reference to the service's own generated secret, which
 * CloudFormation resolves at deploy time; the template never holds the value, and no constant a
 * client behind an in-VPC proxy could add is accepted.
 */
function testHeaderValue(template: Template): unknown {
  const secretId = logicalId(template, 'AWS::SecretsManager::Secret', 'TestHeaderValue');
  const secret = template.findResources('AWS::SecretsManager::Secret')[secretId];
  expect(secret.Properties.GenerateSecretString).toEqual({ PasswordLength: 40, ExcludePunctuation: true, IncludeSpace: false });
  return { 'Fn::Join': ['', ['{{resolve:secretsmanager:', { Ref: secretId }, ':SecretString:::}}']] };
}

test('each side-by-side service has its own test-header secret; a rolling one has none', () => {
  const app = new App();
  const stack = new Stack(app, 'Two', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc');
  for (const id of ['A', 'B']) new FargateModelService(stack, id, { vpc, model: ModelSource.fromS3Uri(`s3://team-models/${id}/m.joblib`), rollout: Rollout.canary() });
  new FargateModelService(stack, 'C', { vpc, model: ModelSource.fromS3Uri('s3://team-models/c/m.joblib') });
  const template = Template.fromStack(stack);
  const secrets = Object.keys(template.findResources('AWS::SecretsManager::Secret'));
  expect(secrets).toEqual([expect.stringMatching(/^AEndpointTestHeaderValue/), expect.stringMatching(/^BEndpointTestHeaderValue/)]);
  const values = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::ListenerRule'))
    .flatMap((r: any) => r.Properties.Conditions.filter((c: any) => c.Field === 'http-header').map((c: any) => JSON.stringify(c.HttpHeaderConfig.Values)));
  expect(values).toHaveLength(2);
  expect(values.every((v) => !v.includes('"1"') && v.includes('{{resolve:secretsmanager:'))).toBe(true);
  expect(new Set(values).size).toBe(2);
});
