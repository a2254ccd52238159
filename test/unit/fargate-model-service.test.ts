import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { FargateModelService, FargateModelServiceProps, ModelSource } from '../../lib';
import { SAMPLE_MODEL_FILE } from '../../lib/asset-paths';
import { containers, envOf, newStack, synthWithNag, templateOf } from '../helpers/stack';

function model(stack: Stack): ModelSource {
  return ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'ModelBucket', 'team-models'), 'iris/model.joblib');
}

function synth(props: Partial<FargateModelServiceProps> = {}, setup?: (stack: Stack) => Partial<FargateModelServiceProps>): Template {
  return templateOf((stack) => new FargateModelService(stack, 'Model', { model: model(stack), ...props, ...setup?.(stack) }));
}

describe('defaults', () => {
  let template: Template;
  beforeAll(() => {
    template = synth();
  });

  test('one Fargate task: 1 vCPU, 2 GiB, x86_64 Linux, awsvpc', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Cpu: '1024',
      Memory: '2048',
      NetworkMode: 'awsvpc',
      RequiresCompatibilities: ['FARGATE'],
      RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
      Volumes: [{ Name: 'model' }, { Name: 'scratch' }],
    });
  });

  test('the fetcher is a non-essential init container writing the model volume, as a non-root user', () => {
    const fetcher = containers(template)['model-fetcher'];
    expect(fetcher).toMatchObject({
      Essential: false,
      User: '10001:10001',
      ReadonlyRootFilesystem: true,
      MountPoints: [{ ContainerPath: '/models', SourceVolume: 'model', ReadOnly: false }],
    });
    expect(envOf(fetcher)).toEqual({
      MODEL_URI: 's3://team-models/iris/model.joblib', MODEL_DIR: '/models', AWS_REGION: 'eu-west-1', MODEL_FETCH_TIMEOUT_SECONDS: '225',
    });
  });

  test('the server waits for the fetcher to succeed, mounts the model read-only, on a read-only root', () => {
    const server = containers(template).server;
    expect(server).toMatchObject({
      Essential: true,
      User: '10001:10001',
      ReadonlyRootFilesystem: true,
      DependsOn: [{ ContainerName: 'model-fetcher', Condition: 'SUCCESS' }],
      // The API, which the load balancer targets, and the metrics port, which it never does.
      PortMappings: [{ ContainerPort: 8080, Protocol: 'tcp', Name: 'api' }, { ContainerPort: 9090, Protocol: 'tcp', Name: 'metrics' }],
      StopTimeout: 30,
      MountPoints: [
        { ContainerPath: '/models', SourceVolume: 'model', ReadOnly: true },
        { ContainerPath: '/tmp', SourceVolume: 'scratch', ReadOnly: false },
      ],
      HealthCheck: { Command: ['CMD', 'python3', '-m', 'model_server.healthcheck'], Interval: 15, Timeout: 5, Retries: 3, StartPeriod: 300 },
    });
    expect(envOf(server)).toEqual({
      PORT: '8080', METRICS_PORT: '9090', MODEL_DIR: '/models', WORKERS: '1', GRACEFUL_TIMEOUT: '25', HEALTH_PATH: '/health',
      // The model's version (no checksum given: its key), and the Service dimension and namespace of its EMF metrics.
      MODEL_VERSION: 'iris/model.joblib', SERVICE_NAME: expect.stringMatching(/^Test-Model-[0-9A-F]{8}$/), EMF_NAMESPACE: 'CdkModelServing',
    });
  });

  test('both containers log to one log group with a retention', () => {
    template.resourceCountIs('AWS::Logs::LogGroup', 2); // the containers' and the VPC flow logs'
    const { fetcher, server } = { fetcher: containers(template)['model-fetcher'], server: containers(template).server };
    for (const [c, prefix] of [[fetcher, 'model-fetcher'], [server, 'server']] as const) {
      expect(c.LogConfiguration).toMatchObject({
        LogDriver: 'awslogs',
        Options: { 'awslogs-group': { Ref: expect.stringMatching(/^ModelLogs/) }, 'awslogs-stream-prefix': prefix },
      });
    }
    const groups = template.findResources('AWS::Logs::LogGroup');
    expect(Object.entries(groups).find(([id]) => id.startsWith('ModelLogs'))![1].Properties.RetentionInDays).toBe(30);
  });

  test('rollout never drops serving capacity, and a failing deployment rolls back', () => {
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DeploymentConfiguration: {
        MinimumHealthyPercent: 100,
        MaximumPercent: 200,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      },
      HealthCheckGracePeriodSeconds: 300,
      NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
      LoadBalancers: [{ ContainerName: 'server', ContainerPort: 8080 }],
    });
  });

  test('without a certificate, an internal ALB (reachable from the VPC) with access logs, HTTP listener, and a /health target group health check', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internal',
      LoadBalancerAttributes: Match.arrayWith([
        { Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' },
        { Key: 'access_logs.s3.enabled', Value: 'true' },
      ]),
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'ip',
      Port: 8080,
      Protocol: 'HTTP',
      HealthCheckPath: '/health',
      Matcher: { HttpCode: '200' },
      HealthCheckIntervalSeconds: 10,
      HealthCheckTimeoutSeconds: 5,
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 3,
      TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }]),
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
  });

  test('tasks accept traffic on the container port from the load balancer only', () => {
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'));
    expect(ingress).toHaveLength(1);
    expect(ingress[0].Properties).toMatchObject({
      FromPort: 8080,
      ToPort: 8080,
      GroupId: { 'Fn::GetAtt': [expect.stringMatching(/^ModelServiceSecurityGroup/), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [expect.stringMatching(/^ModelEndpointLoadBalancerSecurityGroup/), 'GroupId'] },
    });
  });

  test('autoscaling between 2 and 4 tasks on requests per target and on CPU', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 4 });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: Match.objectLike({ PredefinedMetricType: 'ALBRequestCountPerTarget' }),
        TargetValue: 3000,
      }),
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        TargetValue: 70,
      }),
    });
  });

  test('a new VPC with private task subnets, an S3 gateway endpoint and flow logs; a cluster with Container Insights', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' });
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    template.hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] });
  });

  test('the endpoint URL is an output', () => {
    const outputs = template.findOutputs('*');
    const url = Object.values(outputs).find((o) => o.Description?.includes('model endpoint'));
    expect(url?.Value).toEqual({ 'Fn::Join': ['', ['http://', { 'Fn::GetAtt': [expect.stringMatching(/^ModelEndpointLoadBalancer/), 'DNSName'] }]] });
  });
});

test('startupTimeout sets the grace period, bounds the container start period at ECS\'s 300 s, and gives the fetcher its share', () => {
  const long = synth({ startupTimeout: Duration.minutes(12) });
  long.hasResourceProperties('AWS::ECS::Service', { HealthCheckGracePeriodSeconds: 720 });
  expect(containers(long).server.HealthCheck.StartPeriod).toBe(300);
  // Three quarters for the download, a quarter (at least 30 s) for loading and the first health checks.
  expect(envOf(containers(long)['model-fetcher']).MODEL_FETCH_TIMEOUT_SECONDS).toBe('540');
  const short = synth({ startupTimeout: Duration.seconds(90) });
  short.hasResourceProperties('AWS::ECS::Service', { HealthCheckGracePeriodSeconds: 90 });
  expect(containers(short).server.HealthCheck.StartPeriod).toBe(90);
  expect(envOf(containers(short)['model-fetcher']).MODEL_FETCH_TIMEOUT_SECONDS).toBe('60');
  const shortest = synth({ startupTimeout: Duration.minutes(1) });
  expect(envOf(containers(shortest)['model-fetcher']).MODEL_FETCH_TIMEOUT_SECONDS).toBe('30');
});

test('size, storage, workers, port, health path, capacity, timeouts and logs are configurable', () => {
  const template = synth({
    cpu: 4096, memoryLimitMiB: 16384, ephemeralStorageGiB: 100, containerPort: 9000, healthCheckPath: '/ready',
    minCapacity: 3, maxCapacity: 10, stopTimeout: Duration.seconds(60), deregistrationDelay: Duration.seconds(10),
    targetRequestsPerTaskPerMinute: 1200, targetCpuUtilization: 50, logRetention: logs.RetentionDays.ONE_YEAR,
    environment: { LOG_LEVEL: 'debug' },
  });
  template.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '4096', Memory: '16384', EphemeralStorage: { SizeInGiB: 100 } });
  const server = containers(template).server;
  expect(envOf(server)).toEqual({
    PORT: '9000', METRICS_PORT: '9090', MODEL_DIR: '/models', WORKERS: '4', GRACEFUL_TIMEOUT: '55', HEALTH_PATH: '/ready', LOG_LEVEL: 'debug',
    MODEL_VERSION: expect.any(String), SERVICE_NAME: expect.any(String), EMF_NAMESPACE: 'CdkModelServing',
  });
  expect(server.StopTimeout).toBe(60);
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
    Port: 9000, HealthCheckPath: '/ready',
    TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '10' }]),
  });
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 3, MaxCapacity: 10 });
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
    TargetTrackingScalingPolicyConfiguration: Match.objectLike({ TargetValue: 1200 }),
  });
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
    TargetTrackingScalingPolicyConfiguration: Match.objectLike({ TargetValue: 50 }),
  });
  template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
});

test('a certificate gives HTTPS on 443 with a modern TLS policy and a redirect from HTTP', () => {
  const template = synth({}, (stack) => ({
    certificate: acm.Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'),
  }));
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 443, Protocol: 'HTTPS', SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
    Certificates: [{ CertificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' }],
  });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 80, Protocol: 'HTTP',
    DefaultActions: [{ Type: 'redirect', RedirectConfig: { Port: '443', Protocol: 'HTTPS', StatusCode: 'HTTP_301' } }],
  });
  const url = Object.values(template.findOutputs('*'))[0].Value;
  expect(JSON.stringify(url)).toContain('https://');
});

test('metrics: only the API port is a load balancer target; the metrics port opens to the peers it is given, and to nothing else', () => {
  const closed = synth();
  closed.hasResourceProperties('AWS::ECS::Service', { LoadBalancers: [{ ContainerName: 'server', ContainerPort: 8080 }] });
  expect(Object.values(closed.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties.FromPort)).toEqual([8080]);

  const stack = newStack();
  new FargateModelService(stack, 'Model', { model: model(stack) }).allowMetricsFrom(ec2.Peer.ipv4('10.0.0.0/16'));
  const groups = Template.fromStack(stack).findResources('AWS::EC2::SecurityGroup');
  const serviceGroup = Object.entries(groups).find(([id]) => id.startsWith('ModelServiceSecurityGroup'))![1];
  expect(serviceGroup.Properties.SecurityGroupIngress).toEqual([
    { CidrIp: '10.0.0.0/16', FromPort: 9090, ToPort: 9090, IpProtocol: 'tcp', Description: "Prometheus scrapes of the model server's /metrics" },
  ]);
});

test('plain HTTP on the internet is an explicit opt-in', () => {
  const template = synth({ allowPlainHttp: true });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing' });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
  const lbGroups = template.findResources('AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('LoadBalancer') } });
  expect(Object.values(lbGroups)[0].Properties.SecurityGroupIngress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 80 })]);
});

test('a certificate makes the endpoint public by default, on HTTPS', () => {
  const template = synth({}, (stack) => ({
    certificate: acm.Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'),
  }));
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing' });
});

test('an internal load balancer accepts traffic from the VPC only', () => {
  const template = synth({ internetFacing: false });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
  const lbGroups = template.findResources('AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('LoadBalancer') } });
  const ingress = Object.values(lbGroups)[0].Properties.SecurityGroupIngress;
  expect(ingress).toEqual([expect.objectContaining({ CidrIp: { 'Fn::GetAtt': [expect.stringMatching(/^ModelVpc/), 'CidrBlock'] }, FromPort: 80 })]);
  expect(JSON.stringify(ingress)).not.toContain('0.0.0.0/0');
});

test('composes with an existing VPC and cluster: creates neither', () => {
  const stack = newStack();
  const vpc = new ec2.Vpc(stack, 'TeamVpc', { maxAzs: 2 });
  const cluster = new ecs.Cluster(stack, 'TeamCluster', { vpc });
  const svc = new FargateModelService(stack, 'Model', { model: model(stack), cluster });
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::EC2::VPC', 1);
  template.resourceCountIs('AWS::ECS::Cluster', 1);
  template.hasResourceProperties('AWS::ECS::Service', { Cluster: { Ref: Match.stringLikeRegexp('^TeamCluster') } });
  expect(svc.vpc).toBe(vpc);
  expect(svc.cluster).toBe(cluster);
});

test('attaches to an existing listener with a rule below a path prefix, which the server and the health check use too', () => {
  const stack = newStack();
  const vpc = new ec2.Vpc(stack, 'TeamVpc', { maxAzs: 2 });
  const listener = elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'Listener', {
    listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/team-alb/50dc6c495c0c9188/f2f7dc8efc522ab2',
    securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'AlbSg', 'sg-0123456789abcdef0'),
  });
  const svc = new FargateModelService(stack, 'Model', {
    model: model(stack), vpc, healthCheckPath: '/ready',
    existingListener: { listener, priority: 10, pathPrefix: '/models/iris', conditions: [elbv2.ListenerCondition.hostHeaders(['ml.example.com'])] },
  });
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
    Priority: 10,
    Conditions: [
      { Field: 'path-pattern', PathPatternConfig: { Values: ['/models/iris/*'] } },
      { Field: 'host-header', HostHeaderConfig: { Values: ['ml.example.com'] } },
    ],
    ListenerArn: listener.listenerArn,
  });
  // The rule is the service's own resource, beside its target group.
  expect(Object.keys(template.findResources('AWS::ElasticLoadBalancingV2::ListenerRule'))[0]).toMatch(/^ModelEndpointListenerRule/);
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/models/iris/ready' });
  expect(envOf(containers(template).server)).toMatchObject({ ROUTE_PREFIX: '/models/iris', HEALTH_PATH: '/ready' });
  template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { SourceSecurityGroupId: 'sg-0123456789abcdef0', FromPort: 8080 });
  expect(svc.loadBalancer).toBeUndefined();
  expect(svc.listener).toBe(listener);
});

test('exposes the service, target group, load balancer, task role and containers for composition', () => {
  const stack = newStack();
  const svc = new FargateModelService(stack, 'Model', { model: model(stack) });
  expect(svc.service).toBeInstanceOf(ecs.FargateService);
  expect(svc.targetGroup).toBeInstanceOf(elbv2.ApplicationTargetGroup);
  expect(svc.loadBalancer).toBeInstanceOf(elbv2.ApplicationLoadBalancer);
  expect(svc.taskRole).toBe(svc.taskDefinition.taskRole);
  expect(svc.endpointUrl).toMatch(/^http:\/\//);
});

describe('invalid props fail synth with a message that names the prop', () => {
  const cases: Array<[string, Partial<FargateModelServiceProps>, string]> = [
    ['cpu', { cpu: 3000 }, "Test/Model: invalid 'cpu': must be one of 256, 512, 1024, 2048, 4096, 8192, 16384 (CPU units), got 3000"],
    ['memory for cpu', { cpu: 1024, memoryLimitMiB: 1024 }, "Test/Model: invalid 'memoryLimitMiB': with cpu 1024 must be 2048 to 8192 MiB in steps of 1024, got 1024"],
    ['memory for 256', { cpu: 256, memoryLimitMiB: 1536 }, "Test/Model: invalid 'memoryLimitMiB': with cpu 256 must be 512, 1024, 2048 MiB, got 1536"],
    ['ephemeral storage', { ephemeralStorageGiB: 10 }, "Test/Model: invalid 'ephemeralStorageGiB': must be an integer from 21 to 200, got 10"],
    ['health path', { healthCheckPath: 'health' }, "Test/Model: invalid 'healthCheckPath': must be a URL path like /models/iris or /health"],
    ['min above max', { minCapacity: 5, maxCapacity: 2 }, "Test/Model: invalid 'minCapacity': (5) must not exceed maxCapacity (2)"],
    ['port', { containerPort: 70000 }, "Test/Model: invalid 'containerPort': must be an integer from 1 to 65535, got 70000"],
    ['the metrics port as containerPort', { containerPort: 9090 },
      "Test/Model: invalid 'containerPort': must not be 9090, the server's metrics port (never a load balancer target)"],
    ['an internet-facing load balancer without a certificate', { internetFacing: true },
      "Test/Model: invalid 'internetFacing': an internet-facing load balancer without a certificate would serve plain HTTP to the internet; " +
      'pass certificate (HTTPS), set internetFacing: false (reachable from the VPC only), or opt in to plain HTTP with allowPlainHttp: true'],
    ['startup timeout', { startupTimeout: Duration.seconds(45) }, "Test/Model: invalid 'startupTimeout': must be from 1 minute to 2 hours, got 45 seconds"],
    ['stop timeout', { stopTimeout: Duration.minutes(5) }, "Test/Model: invalid 'stopTimeout': must be from 2 seconds to 2 minutes, got 5 minutes"],
    ['cpu target', { targetCpuUtilization: 100 }, "Test/Model: invalid 'targetCpuUtilization': must be an integer from 10 to 95, got 100"],
  ];
  test.each(cases)('%s', (_name, props, message) => {
    expect(() => synth(props)).toThrow(message);
  });

  test('vpc together with cluster', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'V');
    const cluster = new ecs.Cluster(stack, 'C', { vpc });
    expect(() => new FargateModelService(stack, 'M', { model: model(stack), vpc, cluster }))
      .toThrow("Test/M: invalid 'vpc': is taken from the cluster when cluster is given; pass one of them");
  });

  test('an existing listener together with load balancer settings, or with a bad rule', () => {
    type Existing = { priority: number; pathPrefix?: string; conditions?: elbv2.ListenerCondition[] };
    const attempt = (existing: Existing, extra: Partial<FargateModelServiceProps> = {}) => {
      const stack = newStack();
      const listener = elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'L', {
        listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/a/1/2',
        securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1'),
      });
      return () => new FargateModelService(stack, 'M', { model: model(stack), existingListener: { listener, ...existing }, ...extra });
    };
    expect(attempt({ priority: 1, pathPrefix: '/iris' }, { internetFacing: false }))
      .toThrow("Test/M: invalid 'existingListener': configures the load balancer elsewhere");
    expect(attempt({ priority: 0, pathPrefix: '/iris' }))
      .toThrow("Test/M: invalid 'existingListener.priority': must be an integer from 1 to 50000, got 0");
    expect(attempt({ priority: 5 }))
      .toThrow("Test/M: invalid 'existingListener': needs a pathPrefix (e.g. '/models/iris') or at least one condition (e.g. a host header)");
    expect(attempt({ priority: 5, conditions: [elbv2.ListenerCondition.pathPatterns(['/models/iris/*'])] }))
      .toThrow("Test/M: invalid 'existingListener.conditions': has a path-pattern condition, but the server would not answer below that path: " +
        "drop it and set pathPrefix (e.g. pathPrefix: '/models/iris' for '/models/iris/*')");
    for (const bad of ['models/iris', '/models/iris/', '/models/*', '/', '/a b']) {
      expect(attempt({ priority: 5, pathPrefix: bad })).toThrow(`Test/M: invalid 'existingListener.pathPrefix': must be a URL path like '/models/iris'`);
    }
    expect(attempt({ priority: 5, conditions: [elbv2.ListenerCondition.hostHeaders(['ml.example.com'])] })).not.toThrow();
  });

});

describe('secrets', () => {
  function nagged(props: (stack: Stack) => Partial<FargateModelServiceProps>) {
    const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'secrets-')) });
    const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    new FargateModelService(stack, 'Model', { model: model(stack), ...props(stack) });
    const { reports } = synthWithNag(app); // findings fail synth; the reports say which
    const findings = reports.flatMap((r) => r.violations ?? []).map((v) => v.ruleName);
    const warnings = stack.node.findAll().flatMap((c) => c.node.metadata)
      .filter((m) => m.type === 'aws:cdk:warning' && String(m.data).includes('looks like a secret')).map((m) => String(m.data));
    return { stack, findings, warnings };
  }

  test('a secret-looking name in environment is warned about, and cdk-nag reports it (AwsSolutions-ECS2)', () => {
    const { findings, warnings } = nagged(() => ({ environment: { LOG_LEVEL: 'debug', API_KEY: 'sk-live-123' } }));
    expect(warnings).toEqual([expect.stringContaining("environment variable API_KEY looks like a secret (its name looks like a secret's), and the task definition shows it in plain text: pass it in 'secrets'")]);
    expect(findings).toContain('AwsSolutions-ECS2');
  });

  test.each([
    ['DATABASE_URL', 'postgres://svc:hunter2@db/app', 'its value holds a URL with a password'],
    ['DB_PASS', 'hunter2', "its name looks like a secret's"],
    ['SENTRY_DSN', 'https://abc@o1.ingest.example.com/2', "its name looks like a secret's"],
    ['UPSTREAM', 'AKIAIOSFODNN7EXAMPLE', 'its value holds an AWS access key id'],
    ['SIGNING', '-----BEGIN RSA PRIVATE KEY-----\nMIIE...', 'its value holds a private key'],
  ])('%s=%p is warned about (%s), and cdk-nag reports it', (name, value, why) => {
    expect(nagged(() => ({ environment: { BYPASS_CACHE: 'true', AUTHOR: 'ml-team', CONNECT_TIMEOUT: '5', HOMEPAGE: 'https://example.com/a@b' } })).warnings).toEqual([]);
    const { findings, warnings } = nagged(() => ({ environment: { [name]: value } }));
    expect(warnings).toEqual([expect.stringContaining(`environment variable ${name} looks like a secret (${why})`)]);
    expect(findings).toContain('AwsSolutions-ECS2');
  });

  test('non-secret variables are fine; secrets come from Secrets Manager or SSM, readable by the execution role only', () => {
    const { stack, findings, warnings } = nagged((s) => ({
      environment: { LOG_LEVEL: 'debug' },
      secrets: {
        API_KEY: ecs.Secret.fromSecretsManager(secretsmanager.Secret.fromSecretNameV2(s, 'Key', 'iris/api-key')),
        DB_PASSWORD: ecs.Secret.fromSsmParameter(ssm.StringParameter.fromSecureStringParameterAttributes(s, 'Pw', { parameterName: '/iris/db-password' })),
      },
    }));
    expect(warnings).toEqual([]);
    expect(findings).toEqual([]);
    const template = Template.fromStack(stack);
    const server = containers(template).server;
    expect(envOf(server)).not.toHaveProperty('API_KEY');
    expect(server.Secrets.map((x: any) => x.Name)).toEqual(['API_KEY', 'DB_PASSWORD']);
    const execution = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) => id.includes('ExecutionRole'))![1];
    expect(JSON.stringify(execution)).toMatch(/secretsmanager:GetSecretValue[\s\S]*iris\/api-key/);
    expect(JSON.stringify(execution)).toMatch(/ssm:GetParameters[\s\S]*iris\/db-password/);
  });
});

describe('a startup budget that knows the model\'s size', () => {
  const big = (stack: Stack, sizeBytes: number) => ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'Big', 'team-models'), 'big/model.joblib', { sizeBytes });

  test('a 20 GiB model does not fit the default 5 minutes: refused, naming the shortest that does', () => {
    expect(() => templateOf((stack) => new FargateModelService(stack, 'Model', { model: big(stack, 20 * 2 ** 30), ephemeralStorageGiB: 60 })))
      .toThrow("Test/Model: invalid 'startupTimeout': (5 minutes) is too short for a 20.0 GiB model: at 50 MiB/s to download and 100 MiB/s to load " +
        '(conservative floors, see docs/constructs.md) it needs 11 minutes; set startupTimeout: Duration.minutes(11) or more');
  });

  test('the shortest that fits synthesizes, and the fetcher gets three quarters of it', () => {
    const template = templateOf((stack) => new FargateModelService(stack, 'Model', {
      model: big(stack, 20 * 2 ** 30), ephemeralStorageGiB: 60, startupTimeout: Duration.minutes(11),
    }));
    expect(envOf(containers(template)['model-fetcher'])).toMatchObject({ MODEL_FETCH_TIMEOUT_SECONDS: String(11 * 60 - 165) });
  });

  test('a small model, or one of unknown size, keeps the default', () => {
    expect(() => templateOf((stack) => new FargateModelService(stack, 'Model', { model: big(stack, 200 * 2 ** 20) }))).not.toThrow();
    expect(() => templateOf((stack) => new FargateModelService(stack, 'Model', { model: model(stack) }))).not.toThrow();
  });

  test('an asset\'s size is known at synth; a size hint must be a positive whole number', () => {
    const stack = newStack();
    const config = ModelSource.fromAsset(SAMPLE_MODEL_FILE).bind(stack, new iam.AnyPrincipal());
    expect(config.sizeBytes).toBe(fs.statSync(SAMPLE_MODEL_FILE).size);
    expect(() => ModelSource.fromS3Uri('s3://b-models/m.bin', { sizeBytes: 1.5 }))
      .toThrow("ModelSource.fromS3Uri: invalid 'sizeBytes': must be a whole number of bytes above 0, got 1.5");
  });
});
