import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { readContext } from '../../bin/context';
import { ModelServingExampleStack, ModelServingExampleStackProps } from '../../bin/example-stack';
import { SAMPLE_GOLDEN_FILE, SAMPLE_MODEL_DIR } from '../../lib/asset-paths';
import { PluginReport, synthWithNag } from '../helpers/stack';

/**
 * Synthesizes the example stack with cdk-nag's AwsSolutions checks and returns their report:
 * cdk-nag writes one only when it finds something, so a clean run has none.
 */
function nag(props: ModelServingExampleStackProps, extra?: (app: App) => void): { report?: PluginReport; error?: Error } {
  const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-nag-')) });
  new ModelServingExampleStack(app, 'ModelServing', { ...props, env: { account: '123456789012', region: 'eu-west-1' } });
  extra?.(app);
  const { reports, error } = synthWithNag(app);
  return { report: reports.find((r) => r.pluginName === 'AwsSolutions'), error };
}

function describeViolations(report?: PluginReport): string[] {
  return (report?.violations ?? []).flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`));
}

test.each<[string, ModelServingExampleStackProps]>([
  ['the sample model', {}],
  ['a model already in S3 (a prefix)', { modelUri: 's3://team-models/iris/v3/' }],
  ['a model directory', { modelPath: SAMPLE_MODEL_DIR }],
  ['GPU capacity', { compute: 'gpu' }],
  ['GPU Spot capacity on a g5 with a prefix model', { compute: 'gpu', instanceType: 'g5.2xlarge', spot: true, modelUri: 's3://team-models/resnet/' }],
  ['public plain HTTP', { plainHttp: true }],
  ['public HTTPS', { certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' }],
  ['a canary with golden requests', { rollout: 'canary', goldenRequests: SAMPLE_GOLDEN_FILE }],
  ['blue/green with golden requests on GPU capacity over HTTPS', {
    compute: 'gpu', rollout: 'blueGreen', goldenRequests: SAMPLE_GOLDEN_FILE,
    certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc',
  }],
  ['a linear rollout', { rollout: 'linear' }],
  ['scaling to zero on Fargate', { scaleToZero: true }],
  ['scaling to zero on GPU Spot', { compute: 'gpu', spot: true, scaleToZero: true }],
])('the example app with %s has zero unacknowledged AwsSolutions findings', (_name, props) => {
  const { report, error } = nag(props);
  expect(describeViolations(report)).toEqual([]);
  expect(error).toBeUndefined();
});

test('the check is live: an unacknowledged finding fails synth and is reported', () => {
  const { report, error } = nag({}, (app) => {
    new s3.Bucket(app.node.findChild('ModelServing') as any, 'Unencrypted');
  });
  expect(error?.message).toMatch(/AwsSolutions-S1/);
  expect(describeViolations(report)).toEqual(expect.arrayContaining([
    'AwsSolutions-S1 at ModelServing/Unencrypted/Resource',
    'AwsSolutions-S10 at ModelServing/Unencrypted/Resource',
  ]));
});

test('every acknowledgement the library makes carries a reason', () => {
  const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-ack-')) });
  const stack = new ModelServingExampleStack(app, 'ModelServing', { modelUri: 's3://team-models/iris/v3/', env: { region: 'eu-west-1' } });
  app.synth(); // a prefix's acknowledgement is made at synth, once the template's ARN is known
  const acks = stack.node.findAll().flatMap((c) => c.node.metadata)
    .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
    .flatMap((m) => Object.entries(m.data as Record<string, string>));
  const nagAcks = acks.filter(([id]) => id.includes('AwsSolutions-'));
  expect(nagAcks.map(([id]) => id.replace(/^Annotation::/, '')).sort()).toEqual([
    'AwsSolutions-EC23', 'AwsSolutions-ECS2', 'AwsSolutions-IAM5[Resource::*]',
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::team-models/iris/v3/*]', 'AwsSolutions-S1',
  ]);
  for (const [, reason] of nagAcks) expect(reason.length).toBeGreaterThan(60);
});

test('an unknown compute, or GPU options without GPU compute, are refused', () => {
  expect(() => new ModelServingExampleStack(new App(), 'S', { compute: 'tpu' }))
    .toThrow("'-c compute' must be 'cpu' (Fargate) or 'gpu' (EC2 GPU capacity), got 'tpu'");
  expect(() => new ModelServingExampleStack(new App(), 'S', { instanceType: 'g5.xlarge' }))
    .toThrow("'-c instanceType' and '-c spot' apply to '-c compute=gpu' only");
});

test('the example app is internal by default, public on HTTPS with a certificate, public on HTTP only when told', () => {
  const scheme = (props: ModelServingExampleStackProps) => {
    const stack = new ModelServingExampleStack(new App(), 'S', { ...props, env: { account: '123456789012', region: 'eu-west-1' } });
    return Object.values(Template.fromStack(stack).findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))[0].Properties.Scheme;
  };
  expect(scheme({})).toBe('internal');
  expect(scheme({ plainHttp: true })).toBe('internet-facing');
  expect(scheme({ certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' })).toBe('internet-facing');
  expect(() => new ModelServingExampleStack(new App(), 'S', { plainHttp: true, certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' }))
    .toThrow("give either '-c certificateArn=...' (HTTPS) or '-c plainHttp=true', not both");
});

test('-c scaleToZero=true: a scalable target from 0 with the wake and idle alarms; refused beside a side-by-side rollout', () => {
  const stack = new ModelServingExampleStack(new App(), 'S', { scaleToZero: true, env: { account: '123456789012', region: 'eu-west-1' } });
  const template = Template.fromStack(stack);
  template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 0 });
  expect(Object.keys(template.findResources('AWS::CloudWatch::Alarm')).filter((id) => /ScaleToZero(Wake|Idle)Alarm/.test(id))).toHaveLength(2);
  expect(stack.servedModel).toMatch(/scaling to zero when idle$/);
  expect(readContext(new App({ context: { scaleToZero: 'true', rollout: 'canary' } })).problems).toEqual([
    "'-c scaleToZero=true' works with rolling deployments only: a service at zero tasks has none to test a canary, linear or blue/green rollout on",
  ]);
});

test('modelPath and modelUri together are refused', () => {
  expect(() => new ModelServingExampleStack(new App(), 'S', { modelPath: 'x', modelUri: 's3://b/k' }))
    .toThrow("give either '-c modelPath=...' or '-c modelUri=...', not both");
});

describe('the app\'s -c settings', () => {
  const read = (context: Record<string, string>) => readContext(new App({ context }));

  test('booleans are true or false only; feature flags and looked-up values are the CDK\'s and are not read', () => {
    expect(read({ spot: 'false', compute: 'gpu', '@aws-cdk/aws-ecs:someFlag': 'true', 'availability-zones:account=1:region=r': '[]' }))
      .toEqual({ context: { spot: false, compute: 'gpu' }, problems: [] });
    expect(read({ plainHttp: 'TRUE' }).problems).toEqual(["'-c plainHttp' must be true or false, got 'TRUE'"]);
  });

  test('every problem is reported in one pass', () => {
    expect(read({ modelpath: 'x', modelPath: 'a', modelUri: 's3://b/k', modelKmsKeyArn: 'arn:aws:kms:eu-west-1:1:key/k', rollout: 'shadow' }).problems).toEqual([
      expect.stringMatching(/^unknown '-c modelpath': did you mean '-c modelPath'\?/),
      "give either '-c modelPath=...' or '-c modelUri=...', not both",
      "'-c rollout' must be one of rolling, canary, linear, blueGreen, got 'shadow'",
    ]);
    expect(read({ modelKmsKeyArn: 'arn:aws:kms:eu-west-1:1:key/k' }).problems).toEqual(["'-c modelKmsKeyArn' is the key of a bucket's model: it needs '-c modelUri=s3://...'"]);
  });
});
