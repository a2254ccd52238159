import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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
