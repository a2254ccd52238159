import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { FargateModelService, GpuModelService, ModelContainerContract, ModelSource } from '../lib';

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

/** Which variant of the model service to synthesize. */
export interface ModelTaskOptions {
  /** The SHA-256 the fetcher checks the model against. */
  readonly sha256?: string;
  /** The service's modelVersion prop. */
  readonly modelVersion?: string;
  /** A local model file or directory (ModelSource.fromAsset) instead of `modelUri`. */
  readonly modelPath?: string;
  /** A GpuModelService (the GPU image's task) instead of a FargateModelService. */
  readonly gpu?: boolean;
  /** Behind a path rule on a shared listener, answering below this prefix. */
  readonly pathPrefix?: string;
  readonly healthCheckPath?: string;
  readonly startupTimeout?: Duration;
}

/** A model task as ECS runs it: its two containers, and the path the load balancer's health check calls. */
export interface ModelTask {
  readonly fetcher: ContainerSpec;
  readonly server: ContainerSpec;
  readonly targetHealthCheckPath: string;
}

/**
 * The fetcher and server containers exactly as the constructs define them for `modelUri`: this
 * synthesizes the real construct and reads its template, so a local run (or a test) uses the
 * same environment, user, read-only root filesystem and mounts as ECS, and the health check path
 * the target group uses.
 */
export function modelTask(modelUri: string, options: ModelTaskOptions = {}): ModelTask {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-task-'));
  try {
    const app = new App({ outdir });
    const stack = new Stack(app, 'LocalModelTask', { env: { account: '000000000000', region: 'us-east-1' } });
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 });
    const props = {
      vpc,
      // The library's own images, as deployed (staging their build contexts needs no Docker).
      model: options.modelPath ? ModelSource.fromAsset(options.modelPath) : ModelSource.fromS3Uri(modelUri, { sha256: options.sha256 }),
      healthCheckPath: options.healthCheckPath,
      startupTimeout: options.startupTimeout,
      modelVersion: options.modelVersion,
      existingListener: options.pathPrefix ? {
        listener: new elbv2.ApplicationLoadBalancer(stack, 'Shared', { vpc }).addListener('Http', { port: 80, defaultAction: elbv2.ListenerAction.fixedResponse(404) }),
        priority: 10,
        pathPrefix: options.pathPrefix,
      } : undefined,
    };
    if (options.gpu) new GpuModelService(stack, 'Model', props);
    else new FargateModelService(stack, 'Model', props);
    const template = JSON.parse(fs.readFileSync(path.join(app.synth().directory, 'LocalModelTask.template.json'), 'utf8'));
    const resources = Object.values<any>(template.Resources);
    const task = resources.find((r) => r.Type === 'AWS::ECS::TaskDefinition');
    const specs = (task.Properties.ContainerDefinitions as any[]).map(toSpec);
    const targetGroup = resources.find((r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup');
    return {
      fetcher: specs.find((s) => s.name === ModelContainerContract.FETCHER_CONTAINER_NAME)!,
      server: specs.find((s) => s.name === ModelContainerContract.SERVER_CONTAINER_NAME)!,
      targetHealthCheckPath: targetGroup.Properties.HealthCheckPath,
    };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

function toSpec(def: any): ContainerSpec {
  const environment: Record<string, string> = {};
  for (const { Name, Value } of def.Environment ?? []) {
    // An asset's S3 URL is a CloudFormation expression; a local run names its own object instead.
    if (typeof Value !== 'string' && Name !== 'MODEL_URI') throw new Error(`container ${def.Name}: ${Name} is not a literal value`);
    environment[Name] = typeof Value === 'string' ? Value : JSON.stringify(Value);
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
