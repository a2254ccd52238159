import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One finding of CloudFormation's own linter. */
export interface LintFinding {
  readonly rule: string;
  readonly level: string;
  readonly file: string;
  readonly resource: string;
  readonly message: string;
}

/**
 * Warnings that come from aws-cdk-lib itself, not from this library, each with its reason (the
 * docs/security.md lists them too). Anything else, and any error, fails the tests.
 */
const KNOWN_WARNINGS: ReadonlyArray<{ rule: string; resource: RegExp; reason: string }> = [
  {
    rule: 'W3005',
    resource: /^CustomVpcRestrictDefaultSGCustomResourceProviderHandler/,
    reason: "aws-cdk-lib's provider for a VPC's restrictDefaultSecurityGroup gives its Lambda function a DependsOn on its role, which the function also references",
  },
  {
    rule: 'W3010',
    resource: /Subnet[0-9A-F]{8}$/,
    reason: "a stack with a concrete account and region gets its availability zones at synth (recorded in cdk.context.json), so aws-cdk-lib's Vpc names them in its subnets instead of calling Fn::GetAZs",
  },
];

export function requireCfnLint(): void {
  const result = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error("cfn-lint is not installed: 'pip install cfn-lint' (CloudFormation's linter; these machines and CI have it)");
  }
}

/** The CloudFormation templates of a cloud assembly directory. */
export function templatesIn(assemblyDir: string): string[] {
  return fs.readdirSync(assemblyDir).filter((f) => f.endsWith('.template.json')).map((f) => path.join(assemblyDir, f));
}

/** Runs cfn-lint over `templates` and returns every finding that is not a known aws-cdk-lib warning. */
export function cfnLint(templates: string[]): LintFinding[] {
  if (templates.length === 0) throw new Error('no templates to lint');
  const result = spawnSync('cfn-lint', ['--format', 'json', '--', ...templates], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 2 ** 20 });
  if (result.error) throw result.error;
  // cfn-lint exits non-zero whenever it finds something; the JSON on stdout says what.
  let raw: any[];
  try {
    raw = JSON.parse(result.stdout || '[]');
  } catch {
    throw new Error(`cfn-lint did not answer in JSON (exit ${result.status}): ${(result.stderr || result.stdout).slice(0, 2000)}`);
  }
  return raw.map((f) => ({
    rule: f.Rule.Id,
    level: f.Level,
    file: path.basename(f.Filename),
    resource: f.Location?.Path?.[1] ?? '',
    message: f.Message,
  })).filter((f) => !KNOWN_WARNINGS.some((k) => k.rule === f.rule && k.resource.test(f.resource)));
}
