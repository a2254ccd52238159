import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { FargateModelService, ModelSource } from '../../lib';
import { cfnLint, requireCfnLint, templatesIn } from '../helpers/cfn-lint';
import { COMPOSITIONS } from '../helpers/compositions';

/**
 * CloudFormation's own linter over the templates of apps that use the constructs in stacks of
 * their own. (The example app's templates are linted where the CDK CLI synthesizes them, in
 * cdk-cli.test.ts.)
 */
beforeAll(() => {
  requireCfnLint();
});

test.each(Object.entries(COMPOSITIONS))('%s: cfn-lint finds nothing', (_name, make) => {
  const assembly = make().synth();
  const templates = templatesIn(assembly.directory);
  expect(templates.length).toBeGreaterThanOrEqual(1);
  expect(cfnLint(templates)).toEqual([]);
}, 120_000);

test('the linter is live: a template with a wrong property is an error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lint-'));
  const file = path.join(dir, 'Broken.template.json');
  fs.writeFileSync(file, JSON.stringify({ Resources: { Bucket: { Type: 'AWS::S3::Bucket', Properties: { BucketNme: 'x' } } } }));
  expect(cfnLint([file])).toEqual([expect.objectContaining({ rule: 'E3002', level: 'Error', resource: 'Bucket' })]);
}, 60_000);

test('highResolutionCpuScaling: the only findings are the two this cfn-lint\'s schema is too old for', () => {
  const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'lint-hr-')) });
  const stack = new Stack(app, 'Fast', { env: { account: '123456789012', region: 'eu-west-1' } });
  new FargateModelService(stack, 'Iris', {
    model: ModelSource.fromS3Uri('s3://team-models/iris/v3/model.joblib'),
    highResolutionCpuScaling: true,
  });
  const findings = cfnLint(templatesIn(app.synth().directory))
    // aws-cdk-lib's Vpc in a stack without context names placeholder zones; the compositions above use real ones.
    .filter((f) => f.rule !== 'W3010');
  expect(findings.map((f) => [f.rule, f.level, f.message.slice(0, 80)])).toEqual([
    ['E3002', 'Error', "Additional properties are not allowed ('MonitoringConfiguration' was unexpected)"],
    ['E3030', 'Error', expect.stringMatching(/^'ECSServiceAverageCPUUtilizationHighResolution' is not one of/)],
  ]);
}, 120_000);
