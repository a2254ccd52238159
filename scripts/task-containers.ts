import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { FargateModelService, ModelSource } from '../lib';

/** One container of the model task, as its ECS task definition defines it. */
export interface ContainerSpec {
  readonly name: string;
  readonly environment: Record<string, string>;
  readonly user?: string;
  readonly readOnlyRootFilesystem: boolean;
  readonly mounts: ReadonlyArray<{ readonly volume: string; readonly path: string; readonly readOnly: boolean }>;
  readonly essential: boolean;
  readonly dependsOn: ReadonlyArray<{ readonly container: string; readonly condition: string }>;
}

/**
 * The fetcher and server containers exactly as FargateModelService defines them for `modelUri`:
 * this synthesizes the real construct and reads its task definition, so a local run (or a test)
 * uses the same environment, user, read-only root filesystem and mounts as ECS.
 */
export function modelTaskContainers(modelUri: string, sha256?: string): { fetcher: ContainerSpec; server: ContainerSpec } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-task-'));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, 'LocalModelTask', { env: { account: '000000000000', region: 'us-east-1' } });
    // The library's own images, as deployed (staging their build contexts needs no Docker).
    new FargateModelService(stack, 'Model', { model: ModelSource.fromS3Uri(modelUri, { sha256 }) });
    const template = JSON.parse(fs.readFileSync(path.join(app.synth().directory, 'LocalModelTask.template.json'), 'utf8'));
    const task = Object.values<any>(template.Resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition');
    const specs = (task.Properties.ContainerDefinitions as any[]).map(toSpec);
    return { fetcher: specs.find((s) => s.name === 'model-fetcher')!, server: specs.find((s) => s.name === 'server')! };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

function toSpec(def: any): ContainerSpec {
  const environment: Record<string, string> = {};
  for (const { Name, Value } of def.Environment ?? []) {
    if (typeof Value !== 'string') throw new Error(`container ${def.Name}: ${Name} is not a literal value`);
    environment[Name] = Value;
  }
  return {
    name: def.Name,
    environment,
    user: def.User,
    readOnlyRootFilesystem: def.ReadonlyRootFilesystem === true,
    mounts: (def.MountPoints ?? []).map((m: any) => ({ volume: m.SourceVolume, path: m.ContainerPath, readOnly: m.ReadOnly === true })),
    essential: def.Essential !== false,
    dependsOn: (def.DependsOn ?? []).map((d: any) => ({ container: d.ContainerName, condition: d.Condition })),
  };
}
