import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, FargateModelServiceProps, GoldenRequests, GpuModelService, ModelContainerContract, ModelSource, Rollout, ServingImage } from '../../lib';
import { SAMPLE_GOLDEN_FILE, SAMPLE_MODEL_FILE } from '../../lib/asset-paths';
import { filterMatches } from '../helpers/filter-pattern';
import { newStack, synthWithNag } from '../helpers/stack';

/**
 * What synthesizes, boots: props that would synthesize but leave every task failing at deploy
 * (after minutes of circuit-breaker retries) fail synth with one line that says what to change.
 */
const FETCHER = ecs.ContainerImage.fromRegistry('example.com/fetcher:1');

function fargate(props: (stack: Stack) => Partial<FargateModelServiceProps>, stack: Stack = newStack()): () => FargateModelService {
  return () => new FargateModelService(stack, 'Model', {
    model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'models'), 'iris.joblib'),
    fetcherImage: FETCHER,
    ...props(stack),
  });
}

function modelDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-files-'));
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
  return dir;
}

describe('model files known at synth are judged by the formats the image serves', () => {
  test.each<[string, () => ModelSource, RegExp]>([
    ['an ONNX object', () => ModelSource.fromS3Uri('s3://models/resnet.onnx'),
      /^Test\/Model: invalid 'model': is 'resnet.onnx', which is not a model file the server reads \(\.joblib, \.pkl, \.pickle, \.pt, \.torchscript\)$/],
    ['a .bin asset', () => ModelSource.fromAsset(path.join(modelDir({ 'weights.bin': 'x' }), 'weights.bin')), /invalid 'model': is 'weights.bin', which is not a model file/],
    ['a directory without a model file', () => ModelSource.fromAsset(modelDir({ 'labels.json': '[]', 'README.md': 'x' })),
      /invalid 'model': has no model file the server reads \(.*\) among its 2 files/],
    ['a directory with two model files', () => ModelSource.fromAsset(modelDir({ 'a.joblib': 'x', 'old/b.joblib': 'y' })),
      /invalid 'model': has 2 model files \(a\.joblib, old\/b\.joblib\): set environment\.MODEL_FILE to the one to serve/],
    ['a TorchScript model on the CPU image', () => ModelSource.fromS3Uri('s3://models/vision.pt'),
      /invalid 'model': serves 'vision.pt', a TorchScript model, which only the GPU model server serves, not the CPU one: use GpuModelService$/],
    ['a prefix whose manifest names no model file', () => ModelSource.fromS3Uri('s3://models/team/', { manifest: { 'notes.txt': 'a'.repeat(64) } }),
      /invalid 'model': is 'notes.txt', which is not a model file/],
  ])('%s fails synth', (_name, source, message) => {
    expect(fargate(() => ({ model: source() }))).toThrow(message);
  });

  test('MODEL_FILE picks one of several, and must name a file the model has', () => {
    const dir = modelDir({ 'a.joblib': 'x', 'b.joblib': 'y' });
    expect(fargate(() => ({ model: ModelSource.fromAsset(dir), environment: { MODEL_FILE: 'b.joblib' } }))).not.toThrow();
    expect(fargate(() => ({ model: ModelSource.fromAsset(dir), environment: { MODEL_FILE: '/models/a.joblib' } }))).not.toThrow();
    expect(fargate(() => ({ model: ModelSource.fromAsset(dir), environment: { MODEL_FILE: 'c.joblib' } })))
      .toThrow(/invalid 'model': has no file 'c.joblib', which MODEL_FILE names/);
  });

  test('what the server serves passes: a joblib file, a directory with one model and its extras, TorchScript on GPU, an unknown prefix', () => {
    expect(fargate(() => ({ model: ModelSource.fromAsset(SAMPLE_MODEL_FILE) }))).not.toThrow();
    expect(fargate(() => ({ model: ModelSource.fromAsset(modelDir({ 'model.pkl': 'x', 'labels.json': '[]', '.cache/old.joblib': 'z' })) }))).not.toThrow();
    expect(fargate(() => ({ model: ModelSource.fromS3Uri('s3://models/team/') }))).not.toThrow();
    const stack = newStack();
    expect(() => new GpuModelService(stack, 'Model', { model: ModelSource.fromS3Uri('s3://models/vision.pt'), fetcherImage: FETCHER })).not.toThrow();
  });

  test('another image is not judged: its formats are its own', () => {
    expect(fargate(() => ({ model: ModelSource.fromS3Uri('s3://models/resnet.onnx'), image: ServingImage.fromRegistry('example.com/onnx-server:1') }))).not.toThrow();
  });
});

test('the GPU image on Fargate fails synth', () => {
  expect(fargate(() => ({ image: ServingImage.fromModelServer({ gpu: true }) })))
    .toThrow("Test/Model: invalid 'image': is the GPU model server (CUDA), which needs GPU capacity: use GpuModelService, or ServingImage.fromModelServer() without gpu");
});

describe('a literal certificate ARN', () => {
  const withCertificate = (arn: string) => fargate((stack) => ({ certificate: acm.Certificate.fromCertificateArn(stack, 'Cert', arn) }));

  test.each(['not-an-arn', 'arn:aws:acm:...', 'arn:aws:acm:eu-west-1:123:certificate/abc', 'arn:aws:s3:::bucket'])('%p fails synth', (arn) => {
    expect(withCertificate(arn)).toThrow(`Test/Model: invalid 'certificate': has the ARN '${arn}', which is neither an ACM certificate's`);
  });

  test('an ACM certificate of another region fails synth; this region\'s and an IAM one pass', () => {
    expect(withCertificate('arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab'))
      .toThrow("Test/Model: invalid 'certificate': is in us-east-1, but the load balancer is in eu-west-1");
    expect(withCertificate('arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab')).not.toThrow();
    expect(withCertificate('arn:aws:iam::123456789012:server-certificate/ml/endpoint')).not.toThrow();
  });
});

describe('services on one shared listener', () => {
  const ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shared/1/2';
  function platform(): { app: App; listener: (stack: Stack) => elbv2.IApplicationListener } {
    const app = new App();
    // The same listener, imported once in each stack that uses it.
    const imported = new Map<Stack, elbv2.IApplicationListener>();
    const listener = (stack: Stack) => imported.get(stack) ?? imported.set(stack, elbv2.ApplicationListener.fromApplicationListenerAttributes(stack, 'Shared', {
      listenerArn: ARN, securityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0'),
    })).get(stack)!;
    return { app, listener };
  }
  const stackIn = (app: App, id: string) => new Stack(app, id, { env: { account: '123456789012', region: 'eu-west-1' } });
  type Rules = { priority: number; pathPrefix: string; testPriority?: number };
  const service = (stack: Stack, id: string, listener: elbv2.IApplicationListener, existing: Rules, rollout?: Rollout) =>
    () => new FargateModelService(stack, id, {
    model: ModelSource.fromS3Uri('s3://models/iris.joblib'), fetcherImage: FETCHER, rollout, existingListener: { listener, ...existing },
  });

  test('the same priority twice in one app fails synth, naming the service that has it', () => {
    const { app, listener } = platform();
    const a = stackIn(app, 'A');
    const b = stackIn(app, 'B');
    expect(service(a, 'Iris', listener(a), { priority: 10, pathPrefix: '/iris' })).not.toThrow();
    expect(service(b, 'Wine', listener(b), { priority: 10, pathPrefix: '/wine' }))
      .toThrow("B/Wine: invalid 'existingListener.priority': (10) is taken on this listener by A/Iris: give each service priorities of its own");
  });

  test('the same path prefix twice fails synth', () => {
    const { app, listener } = platform();
    const a = stackIn(app, 'A');
    expect(service(a, 'Iris', listener(a), { priority: 10, pathPrefix: '/iris' })).not.toThrow();
    expect(service(a, 'Iris2', listener(a), { priority: 20, pathPrefix: '/iris' }))
      .toThrow(/A\/Iris2: invalid 'existingListener.pathPrefix': \('\/iris'\) and the conditions are those of A\/Iris on this listener/);
  });

  test('a side-by-side rollout takes the priority before its rule for the test rule when it is free, and is refused when it is not', () => {
    const { app, listener } = platform();
    const a = stackIn(app, 'A');
    expect(service(a, 'Iris', listener(a), { priority: 10, pathPrefix: '/iris' }, Rollout.canary())).not.toThrow();
    const rules = Template.fromStack(a).findResources('AWS::ElasticLoadBalancingV2::ListenerRule');
    expect(Object.values<any>(rules).map((r) => r.Properties.Priority).sort()).toEqual([10, 9].sort());
    expect(service(a, 'Wine', listener(a), { priority: 20, pathPrefix: '/wine', testPriority: 9 }, Rollout.canary()))
      .toThrow("A/Wine: invalid 'existingListener.testPriority': (9) is taken on this listener by A/Iris");
    expect(service(a, 'Beer', listener(a), { priority: 10 + 1, pathPrefix: '/beer' }, Rollout.canary()))
      .toThrow(/A\/Beer: invalid 'existingListener.testPriority': is needed by the side-by-side rollout.*give a priority below 11/);
  });

  test('other apps and other listeners do not count', () => {
    const first = platform();
    const second = platform();
    const a = stackIn(first.app, 'A');
    const b = stackIn(second.app, 'A');
    expect(service(a, 'Iris', first.listener(a), { priority: 10, pathPrefix: '/iris' })).not.toThrow();
    expect(service(b, 'Iris', second.listener(b), { priority: 10, pathPrefix: '/iris' })).not.toThrow();
  });
});

describe('the library\'s functions run the newest Node.js runtime the app\'s aws-cdk-lib names for the region', () => {
  function hookApp(): { app: App; stack: Stack } {
    const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'runtime-')) });
    const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    new FargateModelService(stack, 'Model', {
      model: ModelSource.fromS3Uri('s3://models/iris.joblib'), fetcherImage: FETCHER,
      rollout: Rollout.canary(), goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE),
    });
    return { app, stack };
  }

  test('the region\'s newest: cdk-nag is clean without an acknowledgement', () => {
    const { app, stack } = hookApp();
    const runtimes = Object.values<any>(Template.fromStack(stack).findResources('AWS::Lambda::Function')).map((f) => f.Properties.Runtime);
    expect([...new Set(runtimes)]).toEqual([lambda.determineLatestNodeRuntime(stack).name]);
    const { reports, error } = synthWithNag(app);
    expect(error).toBeUndefined();
    expect(reports.flatMap((r) => r.violations)).toEqual([]);
  });

  test('an aws-cdk-lib that knows a newer runtime than the region\'s facts name (as 2.278 does): L1 is acknowledged with the reason, for the function alone', () => {
    const newer = new lambda.Runtime('nodejs98.x', lambda.RuntimeFamily.NODEJS);
    try {
      const { app, stack } = hookApp();
      const { reports, error } = synthWithNag(app);
      expect(error).toBeUndefined();
      expect(reports.flatMap((r) => r.violations)).toEqual([]);
      const acknowledged = stack.node.findAll()
        .filter((c) => c.node.metadata.some((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY && JSON.stringify(m.data).includes('AwsSolutions-L1')))
        .map((c) => c.node.path);
      expect(acknowledged).toEqual(['S/Model/GoldenRequests/Handler/Function']);
    } finally {
      lambda.Runtime.ALL.splice(lambda.Runtime.ALL.indexOf(newer), 1);
    }
  });
});

describe('the start-failure alarm counts what only the fetcher and the server write', () => {
  function startFailuresPattern(): string {
    const stack = newStack();
    new FargateModelService(stack, 'Model', { model: ModelSource.fromS3Uri('s3://models/iris.joblib'), fetcherImage: FETCHER });
    const filters = Object.values<any>(Template.fromStack(stack).findResources('AWS::Logs::MetricFilter'));
    expect(filters).toHaveLength(1);
    return filters[0].Properties.FilterPattern;
  }

  test('an access-log line a client filled with both markers does not match; the containers\' own lines do', () => {
    const pattern = startFailuresPattern();
    const spoofed = JSON.stringify({
      time: '2026-12-07T10:00:00+0000', remote: '10.0.1.7', forwarded_for: 'model-fetcher: error: x', method: 'GET',
      path: '/health?model-fetcher: error:', status: 200, bytes: 40, duration_ms: 0.4,
      user_agent: 'model failed to load {"event":"model_start_failed"}', model_version: 'v1',
    });
    expect(filterMatches(pattern, spoofed)).toBe(false);
    // The markers the old unstructured filter counted are in that line: it would have fired.
    expect(filterMatches(ModelContainerContract.START_FAILURE_MARKERS.map((m) => `?"${m}"`).join(' '), spoofed)).toBe(true);
    expect(filterMatches(pattern, '{"event":"model_start_failed","container":"model-fetcher","reason":"s3://m/k: NoSuchKey"}')).toBe(true);
    expect(filterMatches(pattern, '{"event":"model_start_failed","container":"server","reason":"model failed to load"}')).toBe(true);
  });
});

describe('HTTPS a client can reach: domainName and hostedZone', () => {
  const zoneOf = (stack: Stack) => route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: 'Z0123456789ABC', zoneName: 'ml.example.com' });
  const certificateOf = (stack: Stack) => acm.Certificate.fromCertificateArn(stack, 'Cert', 'arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab');

  test('an alias record points the name at the load balancer, and EndpointUrl uses the name the certificate matches', () => {
    const stack = newStack();
    fargate((s) => ({ domainName: 'iris.ml.example.com', hostedZone: zoneOf(s), certificate: certificateOf(s) }), stack)();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'iris.ml.example.com.', Type: 'A', HostedZoneId: 'Z0123456789ABC',
      AliasTarget: Match.objectLike({ DNSName: Match.anyValue() }),
    });
    const outputs = Object.values<any>(template.findOutputs('*'));
    expect(outputs.map((o) => o.Value)).toContain('https://iris.ml.example.com');
  });

  test.each<[string, (stack: Stack) => Partial<FargateModelServiceProps>, string]>([
    ['a name without a zone', () => ({ domainName: 'iris.ml.example.com' }), "Test/Model: invalid 'hostedZone': goes with the other"],
    ['a zone without a name', (s) => ({ hostedZone: zoneOf(s) }), "Test/Model: invalid 'domainName': goes with the other"],
    ['a name outside the zone', (s) => ({ domainName: 'iris.example.org', hostedZone: zoneOf(s) }),
      "Test/Model: invalid 'domainName': ('iris.example.org') is not in the hosted zone ml.example.com"],
  ])('%s fails synth', (_name, props, message) => {
    expect(fargate(props)).toThrow(message);
  });
});
