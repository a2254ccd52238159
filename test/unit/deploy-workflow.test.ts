import * as fs from 'node:fs';
import * as path from 'node:path';
import { PUBLISH_USAGE } from '../../cli/publish';
import { SCAN_GATE_USAGE } from '../../cli/scan-gate';
import { SMOKE_USAGE } from '../../cli/smoke';

/**
 * The CI workflow that users copy: its steps run in the safe order, in two jobs of which only the
 * second holds AWS credentials (through OIDC, never stored keys), every action pinned to a commit,
 * and every CLI flag it passes is one the CLI has.
 */
const WORKFLOW = fs.readFileSync(path.join(__dirname, '..', '..', '.github', 'workflows', 'deploy.yml'), 'utf8');

/** A job's block of the workflow, from its header to the next job's. */
function job(name: string): string {
  const start = WORKFLOW.indexOf(`\n  ${name}:\n`);
  expect(start).toBeGreaterThan(0);
  const next = WORKFLOW.slice(start + 1).search(/\n {2}[a-z-]+:\n/);
  return next < 0 ? WORKFLOW.slice(start) : WORKFLOW.slice(start, start + 1 + next);
}
const runsOf = (block: string) => [...block.matchAll(/^\s+run: (.+)$/gm)].map((m) => m[1]);

test('the test job installs, tests and synthesizes, with no AWS credentials and no OIDC token, and hands the cloud assembly on', () => {
  const test = job('test');
  expect(runsOf(test)).toEqual(['sudo --preserve-env=PATH,HOME bash .ci/run', 'npx cdk synth $CDK_CONTEXT --quiet']);
  expect(test).toMatch(/actions\/upload-artifact@\S+ # v[\d.]+\n\s+with:\n\s+name: cloud-assembly\n/);
  expect(test).toMatch(/permissions:\n\s+contents: read\n/);
  expect(test).not.toMatch(/id-token|configure-aws-credentials/);
  expect(WORKFLOW).toMatch(/^permissions: \{\}$/m); // nothing granted outside the jobs
});

test('the deploy job needs the tests, runs no build and no synth where the token is, and runs: install (no scripts), repository, publish, scan gate, deploy, smoke', () => {
  const deploy = job('deploy');
  expect(deploy).toMatch(/\n\s+needs: test\n/);
  expect(deploy).toMatch(/permissions:\n\s+id-token: write[^\n]*\n\s+contents: read\n/);
  expect(deploy).toMatch(/actions\/download-artifact@\S+ # v[\d.]+\n\s+with:\n(\s+#[^\n]*\n)*\s+name: cloud-assembly\n/);
  expect(deploy.indexOf('download-artifact')).toBeLessThan(deploy.indexOf('configure-aws-credentials'));
  expect(runsOf(deploy).filter((r) => /npm run build|cdk synth/.test(r))).toEqual([]);
  const order = [/^npm ci --ignore-scripts$/,
    /^npx cdk deploy --app cdk\.out .*--import-existing-resources ModelServingImages$/,
    /^npx cdk-model-serving publish /, /^npx cdk-model-serving scan-gate /,
    /^npx cdk deploy --app cdk\.out --all --require-approval never --outputs-file cdk-outputs\.json$/, /^npx cdk-model-serving smoke /];
  const runs = runsOf(deploy);
  expect(runs).toHaveLength(order.length);
  runs.forEach((run, i) => expect(run).toMatch(order[i]));
});

test('credentials come from an OIDC role, never from stored keys', () => {
  expect(job('deploy')).toMatch(/aws-actions\/configure-aws-credentials@[0-9a-f]{40} # v\d+\.\d+\.\d+\n\s+with:\n\s+role-to-assume: \$\{\{ vars\.AWS_DEPLOY_ROLE_ARN \}\}/);
  expect(WORKFLOW).not.toMatch(/aws-access-key-id|AWS_SECRET_ACCESS_KEY|secrets\./);
});

test('every action is pinned to a commit, with its tag in a comment', () => {
  const uses = [...WORKFLOW.matchAll(/uses: (\S+)(.*)$/gm)];
  expect(uses.length).toBeGreaterThanOrEqual(6);
  for (const [, ref, comment] of uses) {
    expect(ref).toMatch(/^[a-z0-9-]+\/[a-z0-9-]+@[0-9a-f]{40}$/);
    expect(comment).toMatch(/^ # v\d+\.\d+\.\d+$/);
  }
});

test('checkouts do not leave the token in the repository\'s git config', () => {
  const checkouts = [...WORKFLOW.matchAll(/uses: actions\/checkout@\S+.*\n\s+with:\n\s+persist-credentials: (\w+)/g)];
  expect(checkouts.map((m) => m[1])).toEqual(['false', 'false']);
  expect(WORKFLOW.match(/uses: actions\/checkout@/g)).toHaveLength(2);
});

test.each([
  ['publish', PUBLISH_USAGE],
  ['scan-gate', SCAN_GATE_USAGE],
  ['smoke', SMOKE_USAGE],
])('every flag given to %s is one it has', (...[command, usage]) => {
  const line = runsOf(WORKFLOW).find((r) => r.startsWith(`npx cdk-model-serving ${command} `))!;
  const flags = line.match(/--[a-z-]+/g)!;
  expect(flags.length).toBeGreaterThan(0);
  for (const flag of flags) expect(usage).toContain(flag);
});
