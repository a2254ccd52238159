import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Construct } from 'constructs';

/** A stack in a fresh app with a fixed account and region, as a deployed app would have. */
export function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
}

/** Builds `body` into a fresh stack and returns its template. */
export function templateOf(body: (stack: Stack) => Construct | void): Template {
  const stack = newStack();
  body(stack);
  return Template.fromStack(stack);
}

/** The container definitions of the only task definition in a template. */
export function containers(template: Template): Record<string, any> {
  const defs = Object.values(template.findResources('AWS::ECS::TaskDefinition'));
  expect(defs).toHaveLength(1);
  const byName: Record<string, any> = {};
  for (const c of defs[0].Properties.ContainerDefinitions) byName[c.Name] = c;
  return byName;
}

/** A container's environment as a plain object. */
export function envOf(container: any): Record<string, unknown> {
  return Object.fromEntries((container.Environment ?? []).map((e: any) => [e.Name, e.Value]));
}

/** One validation plugin's report, as synth writes it to `validation-report.json`. */
export interface PluginReport {
  readonly pluginName: string;
  readonly conclusion: string;
  readonly violations: Array<{ ruleName: string; violatingConstructs: Array<{ constructPath: string }> }>;
}

/**
 * Synthesizes an app (with an `outdir` of its own) under cdk-nag's AwsSolutions checks. Findings
 * fail synth: the error is returned, and the plugins' reports say which they were.
 */
export function synthWithNag(app: App): { reports: PluginReport[]; error?: Error } {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let error: Error | undefined;
  try {
    app.synth();
  } catch (err) {
    error = err as Error;
  }
  const reports = JSON.parse(fs.readFileSync(path.join(app.outdir, 'validation-report.json'), 'utf8')).pluginReports;
  return { reports, error };
}
