import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
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
