import { App } from 'aws-cdk-lib';
import { exampleProblems, ModelServingExampleStackProps } from './example-stack';

/** What the example app reads from `-c key=value`, with the kind of value each takes. */
const KEYS = {
  stackName: 'text',
  modelPath: 'text',
  modelUri: 'text',
  modelKmsKeyArn: 'text',
  modelVersion: 'text',
  compute: 'text',
  instanceType: 'text',
  spot: 'boolean',
  certificateArn: 'text',
  plainHttp: 'boolean',
  rollout: 'text',
  goldenRequests: 'text',
  scaleToZero: 'boolean',
  imageRepository: 'text',
} as const;

export type ExampleContext = { [K in keyof typeof KEYS]?: (typeof KEYS)[K] extends 'boolean' ? boolean : string };

/**
 * The example app's `-c` settings, each checked, and every problem found in one pass: an unknown
 * key (a typo such as `modelpath` would otherwise deploy the sample model), a boolean that is not
 * `true` or `false`, or settings that do not go together. Keys with a ':', '/' or '@' (feature flags,
 * looked-up values) are the CDK's own and are not read here.
 */
export function readContext(app: App): { context: ExampleContext; problems: string[] } {
  const all = app.node.getAllContext() as Record<string, unknown>;
  const problems: string[] = [];
  const context: Record<string, string | boolean> = {};
  for (const [key, raw] of Object.entries(all)) {
    if (/[:/@]/.test(key)) continue;
    if (!(key in KEYS)) {
      const near = Object.keys(KEYS).find((k) => k.toLowerCase() === key.toLowerCase());
      problems.push(`unknown '-c ${key}'${near ? `: did you mean '-c ${near}'?` : ''} (the app reads ${Object.keys(KEYS).join(', ')})`);
      continue;
    }
    const value = String(raw);
    if (value === '') continue;
    if (KEYS[key as keyof typeof KEYS] === 'boolean') {
      if (value !== 'true' && value !== 'false') problems.push(`'-c ${key}' must be true or false, got '${value}'`);
      else context[key] = value === 'true';
    } else {
      context[key] = value;
    }
  }
  const c = context as ExampleContext;
  problems.push(...exampleProblems(stackProps(c)));
  return { context: c, problems };
}

/** The example stack's props from the checked context: all of it but what the app itself uses. */
export function stackProps(c: ExampleContext): ModelServingExampleStackProps {
  const { stackName: _stackName, imageRepository: _imageRepository, ...props } = c;
  return props;
}
