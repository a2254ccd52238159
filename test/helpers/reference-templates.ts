import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { ModelServingExampleStack, ModelServingExampleStackProps } from '../../bin/example-stack';
import { SAMPLE_GOLDEN_FILE } from '../../lib/asset-paths';

/**
 * The configurations whose templates a deployed stack must keep: an upgrade of the library may
 * change what a resource holds, never which resources there are or their logical IDs.
 * test/fixtures/templates/<name>.json holds each one as the library synthesized it before the
 * service base was split by concern (commit "reference templates").
 */
export const REFERENCE_CONFIGURATIONS: Record<string, ModelServingExampleStackProps> = {
  'fargate-default': {},
  'gpu': { compute: 'gpu' },
  'gpu-spot': { compute: 'gpu', spot: true },
  'fargate-canary': { rollout: 'canary', goldenRequests: SAMPLE_GOLDEN_FILE },
};

export const REFERENCE_TEMPLATES_DIR = path.join(__dirname, '..', 'fixtures', 'templates');

/** The template of one reference configuration, synthesized the way the example app does. */
export function referenceTemplate(name: string): any {
  const app = new App({
    outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'reference-')),
    context: { 'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] },
  });
  const stack = new ModelServingExampleStack(app, 'ModelServing', {
    ...REFERENCE_CONFIGURATIONS[name],
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  return app.synth().getStackArtifact(stack.artifactId).template;
}
