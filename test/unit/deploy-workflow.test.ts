import * as fs from 'node:fs';
import * as path from 'node:path';
import { PUBLISH_USAGE } from '../../cli/publish';
import { SCAN_GATE_USAGE } from '../../cli/scan-gate';
import { SMOKE_USAGE } from '../../cli/smoke';

/**
 * The CI workflow that users copy: its steps run in the safe order, it gets AWS credentials through
 * OIDC only, and every CLI flag it passes is one the CLI has.
 */
const WORKFLOW = fs.readFileSync(path.join(__dirname, '..', '..', '.github', 'workflows', 'deploy.yml'), 'utf8');
const runs = [...WORKFLOW.matchAll(/^\s+run: (.+)$/gm)].map((m) => m[1]);

test('the steps run in order: install, test, synth, repository, publish, scan gate, deploy, smoke', () => {
  const order = [/^npm ci$/, /^npm test$/, /^npx cdk synth /, /^npx cdk deploy --app cdk\.out .*ModelServingImages$/,
    /^npx cdk-model-serving publish /, /^npx cdk-model-serving scan-gate /,
    /^npx cdk deploy --app cdk\.out --all --require-approval never --outputs-file cdk-outputs\.json$/, /^npx cdk-model-serving smoke /];
  expect(runs).toHaveLength(order.length);
  runs.forEach((run, i) => expect(run).toMatch(order[i]));
});

test('credentials come from an OIDC role, never from stored keys', () => {
  expect(WORKFLOW).toMatch(/^permissions:\n\s+id-token: write/m);
  expect(WORKFLOW).toMatch(/aws-actions\/configure-aws-credentials@v4\n\s+with:\n\s+role-to-assume: \$\{\{ vars\.AWS_DEPLOY_ROLE_ARN \}\}/);
  expect(WORKFLOW).not.toMatch(/aws-access-key-id|AWS_SECRET_ACCESS_KEY|secrets\./);
});

test.each([
  ['publish', PUBLISH_USAGE],
  ['scan-gate', SCAN_GATE_USAGE],
  ['smoke', SMOKE_USAGE],
])('every flag given to %s is one it has', (...[command, usage]) => {
  const line = runs.find((r) => r.startsWith(`npx cdk-model-serving ${command} `))!;
  const flags = line.match(/--[a-z-]+/g)!;
  expect(flags.length).toBeGreaterThan(0);
  for (const flag of flags) expect(usage).toContain(flag);
});
