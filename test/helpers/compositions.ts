import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, RemovalPolicy, Stack, StackProps, TimeZone } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, GoldenRequests, GpuCapacity, GpuModelService, ModelSource, Rollout } from '../../lib';
import { SAMPLE_GOLDEN_FILE } from '../../lib/asset-paths';

/**
 * Apps that use the constructs the way a team does, in stacks of its own: what the composition
 * suite synthesizes and what cfn-lint checks.
 */
const ENV: StackProps['env'] = { account: '123456789012', region: 'eu-west-1' };

/** The usual platform stack: a VPC, a cluster, a shared ALB listener and a KMS-encrypted model bucket. */
class PlatformStack extends Stack {
  public readonly vpc: ec2.Vpc;
  public readonly cluster: ecs.Cluster;
  public readonly listener: elbv2.ApplicationListener;
  public readonly modelBucket: s3.Bucket;

  constructor(scope: App, id: string) {
    super(scope, id, { env: ENV });
    this.vpc = new ec2.Vpc(this, 'Vpc', { maxAzs: 2, natGateways: 1 });
    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: this.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const alb = new elbv2.ApplicationLoadBalancer(this, 'Alb', { vpc: this.vpc, internetFacing: true });
    this.listener = alb.addListener('Http', {
      port: 80,
      defaultAction: elbv2.ListenerAction.fixedResponse(404, { contentType: 'application/json', messageBody: '{"error":"no such model"}' }),
    });
    this.modelBucket = new s3.Bucket(this, 'Models', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: new kms.Key(this, 'ModelsKey', { enableKeyRotation: true }),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

/** A platform stack that also owns GPU instances, which the GPU services of other stacks share. */
class GpuPlatformStack extends PlatformStack {
  public readonly gpus: GpuCapacity;

  constructor(scope: App, id: string) {
    super(scope, id);
    this.gpus = new GpuCapacity(this, 'Gpus', { cluster: this.cluster, instanceType: new ec2.InstanceType('g5.xlarge'), maxInstances: 6 });
  }
}

/** An app with the context a deployed app keeps in cdk.context.json (its availability zones). */
function newApp(): App {
  return new App({
    outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'composition-')),
    context: { [`availability-zones:account=${ENV!.account}:region=${ENV!.region}`]: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] },
  });
}

/**
 * A platform stack, and a stack of model services that use its VPC, cluster, listener and
 * bucket: two on the shared listener side by side below their own paths, and a third in a
 * second stack of models on the same listener.
 */
export function platformApp(): App {
  const app = newApp();
  const platform = new PlatformStack(app, 'Platform');
  const models = new Stack(app, 'Models', { env: ENV });
  for (const [id, key, priority] of [['Iris', 'iris', 10], ['Wine', 'wine', 20]] as const) {
    new FargateModelService(models, id, {
      cluster: platform.cluster,
      model: ModelSource.fromBucket(platform.modelBucket, `${key}/v3/model.joblib`),
      existingListener: { listener: platform.listener, priority, pathPrefix: `/models/${key}` },
    });
  }
  const more = new Stack(app, 'MoreModels', { env: ENV });
  new FargateModelService(more, 'Digits', {
    cluster: platform.cluster,
    model: ModelSource.fromBucket(platform.modelBucket, 'digits/'),
    existingListener: { listener: platform.listener, priority: 30, pathPrefix: '/models/digits' },
    startupTimeout: Duration.minutes(10),
  });
  return app;
}

/**
 * GPU capacity in the platform stack, shared by GPU services in two stacks of models (one with
 * blue/green and golden requests), each below its own path on the shared listener.
 */
export function sharedGpuApp(): App {
  const app = newApp();
  const platform = new GpuPlatformStack(app, 'Platform');
  const models = new Stack(app, 'GpuModels', { env: ENV });
  new GpuModelService(models, 'Resnet', {
    capacity: platform.gpus,
    model: ModelSource.fromBucket(platform.modelBucket, 'resnet/v2/'),
    existingListener: { listener: platform.listener, priority: 10, pathPrefix: '/models/resnet' },
  });
  const more = new Stack(app, 'MoreGpuModels', { env: ENV });
  new GpuModelService(more, 'Clip', {
    capacity: platform.gpus,
    model: ModelSource.fromBucket(platform.modelBucket, 'clip/v1/'),
    existingListener: { listener: platform.listener, priority: 20, pathPrefix: '/models/clip' },
    rollout: Rollout.blueGreen(),
    goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE),
  });
  return app;
}

/** Fargate and GPU services side by side in one stack, on one VPC, one cluster and one shared listener. */
export function sideBySideApp(): App {
  const app = newApp();
  const stack = new Stack(app, 'Serving', { env: ENV });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const cluster = new ecs.Cluster(stack, 'Cluster', { vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
  const listener = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc, internetFacing: true })
    .addListener('Http', { port: 80, defaultAction: elbv2.ListenerAction.fixedResponse(404) });
  new FargateModelService(stack, 'Iris', {
    cluster, model: ModelSource.fromS3Uri('s3://team-models/iris/v3/model.joblib'),
    existingListener: { listener, priority: 10, pathPrefix: '/models/iris' },
  });
  new GpuModelService(stack, 'Resnet', {
    cluster, model: ModelSource.fromS3Uri('s3://team-models/resnet/v2/'),
    existingListener: { listener, priority: 20, pathPrefix: '/models/resnet' },
  });
  return app;
}

/**
 * Every rollout strategy: canary with golden requests and linear on a platform stack's shared
 * listener (test rules at their own priorities), and in a stack of their own with new load
 * balancers, blue/green with golden requests on GPU capacity, canary on Fargate over HTTPS.
 */
function rolloutsApp(): App {
  const app = newApp();
  const platform = new PlatformStack(app, 'Platform');
  const shared = new Stack(app, 'SharedRollouts', { env: ENV });
  new FargateModelService(shared, 'Iris', {
    cluster: platform.cluster,
    model: ModelSource.fromBucket(platform.modelBucket, 'iris/v3/model.joblib'),
    existingListener: { listener: platform.listener, priority: 10, testPriority: 5, pathPrefix: '/models/iris' },
    rollout: Rollout.canary({ percent: 5 }),
    goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE),
  });
  new FargateModelService(shared, 'Wine', {
    cluster: platform.cluster,
    model: ModelSource.fromBucket(platform.modelBucket, 'wine/v1/model.joblib'),
    existingListener: { listener: platform.listener, priority: 20, testPriority: 15, pathPrefix: '/models/wine' },
    rollout: Rollout.linear(),
  });
  const own = new Stack(app, 'Rollouts', { env: ENV });
  new GpuModelService(own, 'Resnet', {
    model: ModelSource.fromS3Uri('s3://team-models/resnet/v2/'),
    rollout: Rollout.blueGreen(),
    goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE),
  });
  new FargateModelService(own, 'Digits', {
    model: ModelSource.fromS3Uri('s3://team-models/digits/v5/model.joblib'),
    rollout: Rollout.canary(),
    certificate: acm.Certificate.fromCertificateArn(own, 'Cert', 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555'),
  });
  return app;
}

/**
 * Services that scale to zero and wake on a request: Fargate with off-hours schedules, GPU and
 * GPU Spot, in one VPC, each behind its own load balancer (the wake alarm watches its 503s).
 */
export function scaleToZeroApp(): App {
  const app = newApp();
  const stack = new Stack(app, 'Elastic', { env: ENV });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const model = (key: string) => ModelSource.fromS3Uri(`s3://team-models/${key}`);
  new FargateModelService(stack, 'Iris', {
    vpc,
    model: model('iris/v3/model.joblib'),
    minCapacity: 0,
    scaleToZeroAfter: Duration.minutes(30),
    schedules: [
      { name: 'weekday-mornings', schedule: appscaling.Schedule.cron({ weekDay: 'MON-FRI', hour: '7', minute: '0' }), minCapacity: 2, timeZone: TimeZone.EUROPE_BERLIN },
      { name: 'evenings', schedule: appscaling.Schedule.cron({ hour: '19', minute: '0' }), minCapacity: 0, timeZone: TimeZone.EUROPE_BERLIN },
    ],
  });
  new GpuModelService(stack, 'Resnet', { vpc, model: model('resnet/v1/model.pt'), minCapacity: 0 });
  new GpuModelService(stack, 'Clip', {
    vpc,
    model: model('clip/v2/model.pt'),
    spot: true,
    minCapacity: 1,
    maxCapacity: 4,
    schedules: [{ name: 'weekends', schedule: appscaling.Schedule.cron({ weekDay: 'SAT', hour: '0', minute: '0' }), minCapacity: 0, maxCapacity: 2 }],
  });
  return app;
}

/** Every composition, by name. */
export const COMPOSITIONS: Record<string, () => App> = {
  'a platform stack\'s VPC, cluster, listener and KMS bucket, used by two stacks of models': platformApp,
  'Fargate and GPU side by side on one cluster and one listener': sideBySideApp,
  'a platform stack\'s GPU capacity, shared by GPU services in two stacks': sharedGpuApp,
  'every rollout strategy, on shared listeners and new load balancers, Fargate and GPU': rolloutsApp,
  'Fargate, GPU and GPU Spot services that scale to zero, with schedules': scaleToZeroApp,
};
