import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { GpuCapacity, GpuModelService, GpuModelServiceProps, ModelSource } from '../../lib';
import { containers, envOf, newStack, templateOf } from '../helpers/stack';

function model(stack: Stack): ModelSource {
  return ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'ModelBucket', 'team-models'), 'resnet/model.pt');
}

function synth(props: Partial<GpuModelServiceProps> = {}): Template {
  return templateOf((stack) => new GpuModelService(stack, 'Model', { model: model(stack), ...props }));
}

function launchTemplateData(template: Template): any {
  const lts = Object.values(template.findResources('AWS::EC2::LaunchTemplate'));
  expect(lts).toHaveLength(1);
  return lts[0].Properties.LaunchTemplateData;
}

function userData(template: Template): string {
  return JSON.stringify(launchTemplateData(template).UserData);
}

describe('defaults', () => {
  let template: Template;
  beforeAll(() => {
    template = synth();
  });

  test('g4dn.xlarge instances from the ECS GPU-optimized Amazon Linux 2023 AMI', () => {
    const data = launchTemplateData(template);
    expect(data.InstanceType).toBe('g4dn.xlarge');
    expect(data.ImageId.Ref).toMatch(/ecsoptimizedamiamazonlinux2023gpurecommendedimageid/);
    const params = template.findParameters('*');
    expect(Object.values(params).map((p) => p.Default)).toContain('/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id');
  });

  test('IMDSv2 required, hop limit 1, tasks blocked from the instance\'s IMDS, detailed monitoring', () => {
    const data = launchTemplateData(template);
    expect(data.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    expect(data.Monitoring).toEqual({ Enabled: true });
    expect(userData(template)).toContain('ECS_AWSVPC_BLOCK_IMDS=true');
  });

  test('an encrypted 100 GiB gp3 root volume for large images', () => {
    expect(launchTemplateData(template).BlockDeviceMappings).toEqual([{
      DeviceName: '/dev/xvda',
      Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 100, VolumeType: 'gp3' },
    }]);
  });

  test('an Auto Scaling group on the launch template (no launch configuration), in private subnets', () => {
    template.resourceCountIs('AWS::AutoScaling::LaunchConfiguration', 0);
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      LaunchTemplate: { LaunchTemplateId: { Ref: Match.stringLikeRegexp('LaunchTemplate') } },
      MinSize: '0',
      MaxSize: '4',
      NewInstancesProtectedFromScaleIn: true,
      VPCZoneIdentifier: [{ Ref: Match.stringLikeRegexp('PrivateSubnet1') }, { Ref: Match.stringLikeRegexp('PrivateSubnet2') }],
    });
  });

  test('a capacity provider with managed scaling and termination protection places the service', () => {
    template.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: {
        ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 },
        ManagedTerminationProtection: 'ENABLED',
      },
    });
    template.hasResourceProperties('AWS::ECS::ClusterCapacityProviderAssociations', {
      CapacityProviders: Match.arrayWith([{ Ref: Match.stringLikeRegexp('Capacity') }]),
    });
    template.hasResourceProperties('AWS::ECS::Service', {
      CapacityProviderStrategy: [{ CapacityProvider: { Ref: Match.stringLikeRegexp('Capacity') }, Weight: 1 }],
      DeploymentConfiguration: { MinimumHealthyPercent: 100, MaximumPercent: 200, DeploymentCircuitBreaker: { Enable: true, Rollback: true } },
      HealthCheckGracePeriodSeconds: 300,
      NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
    });
  });

  test('awsvpc tasks whose server reserves one GPU and the memory one instance leaves', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      NetworkMode: 'awsvpc',
      RequiresCompatibilities: ['EC2'],
      Volumes: [
        { Name: 'model', DockerVolumeConfiguration: { Scope: 'task', Driver: 'local' } },
        { Name: 'scratch', DockerVolumeConfiguration: { Scope: 'task', Driver: 'local' } },
      ],
    });
    const { server, 'model-fetcher': fetcher } = containers(template);
    expect(server.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
    expect(server.Memory).toBe(16 * 1024 - 1536);
    expect(envOf(server)).toMatchObject({ WORKERS: '1', GPU_COUNT: '1', MODEL_DIR: '/models' });
    // The same model wiring as on Fargate.
    expect(server.DependsOn).toEqual([{ ContainerName: 'model-fetcher', Condition: 'SUCCESS' }]);
    expect(server.MountPoints[0]).toEqual({ ContainerPath: '/models', SourceVolume: 'model', ReadOnly: true });
    expect(server.ReadonlyRootFilesystem).toBe(true);
    expect(fetcher.Essential).toBe(false);
  });

  test('the service waits for the capacity provider\'s association with the cluster, and depends on nothing it references already', () => {
    const services = Object.values(template.findResources('AWS::ECS::Service'));
    const associations = Object.keys(template.findResources('AWS::ECS::ClusterCapacityProviderAssociations'));
    expect(associations).toHaveLength(1);
    // Only the association: the cluster itself is referenced by the service (cfn-lint W3005).
    expect(services[0].DependsOn.filter((d: string) => /Cluster/.test(d))).toEqual(associations);
  });

  test('the instance role has the ECS agent\'s permissions and the CloudWatch agent\'s, nothing else: no logs or ECR actions on *', () => {
    const policies = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) => id.includes('InstanceRole'));
    expect(policies).toHaveLength(1);
    const statements = policies[0][1].Properties.PolicyDocument.Statement.map((st: any) => [st.Action, st.Resource, st.Condition]);
    expect(statements).toEqual([
      [['ecs:RegisterContainerInstance', 'ecs:DeregisterContainerInstance', 'ecs:Submit*'], { 'Fn::GetAtt': [expect.stringMatching(/^ModelCluster/), 'Arn'] }, undefined],
      [['ecs:Poll', 'ecs:StartTelemetrySession'], '*', { ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [expect.stringMatching(/^ModelCluster/), 'Arn'] } } }],
      ['ecs:DiscoverPollEndpoint', '*', undefined],
      ['cloudwatch:PutMetricData', '*', { StringEquals: { 'cloudwatch:namespace': 'CWAgent' } }],
    ]);
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
  });

  test('cdk destroy can finish: a custom resource, deleted after the service and capacity provider and before the instances, lifts their scale-in protection', () => {
    const [[id, release]] = Object.entries(template.findResources('Custom::ReleaseScaleInProtection'));
    expect(release.Properties.AutoScalingGroupName).toEqual({ Ref: expect.stringMatching(/^ModelInstancesASG/) });
    expect(release.DependsOn).toEqual([expect.stringMatching(/^ModelCapacity/)]);
    expect(Object.values(template.findResources('AWS::ECS::Service'))[0].DependsOn).toContain(id);
    // Its function: the newest Node.js runtime, and a role that may change this group's instances' protection only.
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) => f.Properties.Description?.includes('scale-in protection'))!;
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Handler: 'index.handler', Timeout: 120 });
    const policy = Object.entries(template.findResources('AWS::IAM::Policy')).find(([pid]) => pid.includes('ReleaseOnDelete'))![1];
    expect(policy.Properties.PolicyDocument.Statement.map((st: any) => [st.Action, st.Resource])).toEqual([
      [['logs:CreateLogStream', 'logs:PutLogEvents'], { 'Fn::GetAtt': [expect.stringMatching(/^ModelReleaseOnDeleteHandlerLogs/), 'Arn'] }],
      ['autoscaling:SetInstanceProtection', { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/', { Ref: expect.stringMatching(/^ModelInstancesASG/) }]] }],
      ['autoscaling:DescribeAutoScalingGroups', '*'],
    ]);
  });

  test('the same load balancer and autoscaling as on Fargate', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/health', TargetType: 'ip' });
    // Request count and CPU (target tracking), concurrency (step).
    template.resourceCountIs('AWS::ApplicationAutoScaling::ScalingPolicy', 3);
  });

  test('no instance store set-up unless asked for', () => {
    expect(userData(template)).not.toContain('NVMe_Instance_Storage');
  });
});

test('the default image is the GPU Dockerfile', () => {
  const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-gpu-')) });
  const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
  new GpuModelService(stack, 'Model', { model: model(stack) });
  const manifest = JSON.parse(fs.readFileSync(path.join(app.synth().directory, 'Test.assets.json'), 'utf8'));
  const files = Object.values(manifest.dockerImages).map((a: any) => a.source.dockerFile);
  expect(files).toContain('Dockerfile.gpu');
});

test('a larger instance: several GPUs per task, memory shared among the tasks it fits', () => {
  const template = synth({ instanceType: new ec2.InstanceType('g5.12xlarge'), gpuCount: 2, maxCapacity: 6 });
  const { server } = containers(template);
  expect(server.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '2' }]);
  expect(server.Memory).toBe(Math.floor((192 * 1024 - 1536) / 2));
  // One worker per GPU, each worker on its own GPU (the server's GPU_COUNT).
  expect(envOf(server)).toMatchObject({ WORKERS: '2', GPU_COUNT: '2' });
  template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MaxSize: '3' });
});

test('Spot capacity: a mixed-instances policy, all Spot, price-capacity optimized, with draining', () => {
  const template = synth({ spot: true });
  template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
    MixedInstancesPolicy: {
      InstancesDistribution: {
        OnDemandBaseCapacity: 0,
        OnDemandPercentageAboveBaseCapacity: 0,
        SpotAllocationStrategy: 'price-capacity-optimized',
      },
      LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateId: { Ref: Match.stringLikeRegexp('LaunchTemplate') } } },
    },
  });
  expect(userData(template)).toContain('ECS_ENABLE_SPOT_INSTANCE_DRAINING=true');
});

test('modelOnInstanceStore mounts the NVMe instance store under Docker\'s volumes', () => {
  const script = userData(synth({ modelOnInstanceStore: true, rootVolumeGiB: 200 }));
  expect(script).toContain('nvme-Amazon_EC2_NVMe_Instance_Storage_');
  expect(script).toContain('mkfs.xfs');
  expect(script).toContain('mount -o noatime \\"$dev\\" /var/lib/docker/volumes');
});

test('composes with an existing cluster', () => {
  const stack = newStack();
  const cluster = new ecs.Cluster(stack, 'TeamCluster', { vpc: new ec2.Vpc(stack, 'TeamVpc') });
  new GpuModelService(stack, 'Model', { model: model(stack), cluster });
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::ECS::Cluster', 1);
  template.hasResourceProperties('AWS::ECS::ClusterCapacityProviderAssociations', { Cluster: { Ref: Match.stringLikeRegexp('^TeamCluster') } });
});

describe('invalid props fail synth with a message that names the prop', () => {
  test.each<[string, Partial<GpuModelServiceProps>, string]>([
    ['two GPUs on a g4dn.xlarge', { gpuCount: 2 },
      "Test/Model: invalid 'gpuCount': a g4dn.xlarge has 1 GPU, so a task cannot reserve 2; lower gpuCount or choose a larger instanceType"],
    ['five GPUs on a g5.12xlarge', { instanceType: new ec2.InstanceType('g5.12xlarge'), gpuCount: 5 },
      "Test/Model: invalid 'gpuCount': a g5.12xlarge has 4 GPUs, so a task cannot reserve 5"],
    ['a non-GPU instance', { instanceType: new ec2.InstanceType('m5.xlarge') },
      "Test/Model: invalid 'instanceType': must be a g4dn, g5 or g6 size (g4dn.{xlarge,2xlarge,4xlarge,8xlarge,12xlarge,16xlarge,metal}"],
    ['an unknown size', { instanceType: new ec2.InstanceType('g4dn.24xlarge') }, "got 'g4dn.24xlarge'"],
    ['more memory than the instance has', { memoryLimitMiB: 32768 },
      "Test/Model: invalid 'memoryLimitMiB': must be an integer from 512 to 14848, got 32768"],
    ['zero GPUs', { gpuCount: 0 }, "Test/Model: invalid 'gpuCount': must be an integer from 1 to 8, got 0"],
    ['a tiny root volume', { rootVolumeGiB: 8 }, "Test/Model: invalid 'rootVolumeGiB': must be an integer from 30 to 16384, got 8"],
  ])('%s', (_name, props, message) => {
    expect(() => synth(props)).toThrow(message);
  });

  test('a cluster from another stack, whose capacity providers that stack owns', () => {
    const app = new App();
    const platform = new Stack(app, 'Platform', { env: { account: '123456789012', region: 'eu-west-1' } });
    const cluster = new ecs.Cluster(platform, 'Cluster', { vpc: new ec2.Vpc(platform, 'Vpc') });
    const stack = new Stack(app, 'Models', { env: { account: '123456789012', region: 'eu-west-1' } });
    expect(() => new GpuModelService(stack, 'M', { model: model(stack), cluster })).toThrow(
      "Models/M: invalid 'cluster': is in stack 'Platform', but a GPU service adds its capacity provider to the cluster, " +
      "which must then happen in that stack and would refer back to this one (a dependency cycle). Define a GpuCapacity in stack 'Platform' " +
      "and pass it as 'capacity', or omit 'cluster' and pass 'vpc' to give the service a cluster of its own");
  });

  test('an imported cluster, to which no capacity provider can be added', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'V');
    const cluster = ecs.Cluster.fromClusterAttributes(stack, 'C', { clusterName: 'team', vpc });
    expect(() => new GpuModelService(stack, 'M', { model: model(stack), cluster }))
      .toThrow("Test/M: invalid 'cluster': must be an ecs.Cluster defined in this app");
  });
});

describe('on a GpuCapacity that a platform stack owns', () => {
  const env = { account: '123456789012', region: 'eu-west-1' };
  function platform() {
    const app = new App();
    const stack = new Stack(app, 'Platform', { env });
    const cluster = new ecs.Cluster(stack, 'Cluster', { vpc: new ec2.Vpc(stack, 'Vpc') });
    return { app, stack, cluster };
  }

  test('the service builds no instances of its own and sizes its tasks by the capacity\'s instance type', () => {
    const { app, cluster, stack } = platform();
    const gpus = new GpuCapacity(stack, 'Gpus', { cluster, instanceType: new ec2.InstanceType('g5.12xlarge') });
    const models = new Stack(app, 'Models', { env });
    const service = new GpuModelService(models, 'M', { model: model(models), capacity: gpus, gpuCount: 2 });
    expect(service.autoScalingGroup).toBe(gpus.autoScalingGroup);
    expect(service.cluster).toBe(cluster);
    const template = Template.fromStack(models);
    template.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 0);
    template.resourceCountIs('AWS::EC2::LaunchTemplate', 0);
    const { server } = containers(template);
    expect(server.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '2' }]);
    expect(server.Memory).toBe(Math.floor((192 * 1024 - 1536) / 2));
    expect(envOf(server).GPU_COUNT).toBe('2');
    // The GPU metrics are the capacity's: its instances are aggregated under its name.
    expect(JSON.stringify(app.synth().getStackByName('Models').template)).toContain(gpus.metricsName);
  });

  test('a service whose maxCapacity the capacity cannot hold gets a warning', () => {
    const { app, cluster, stack } = platform();
    const gpus = new GpuCapacity(stack, 'Gpus', { cluster, maxInstances: 2 });
    const models = new Stack(app, 'Models', { env });
    new GpuModelService(models, 'M', { model: model(models), capacity: gpus, maxCapacity: 5 });
    const warnings = app.synth().getStackByName('Models').messages.filter((m) => m.level === 'warning').map((m) => String(m.entry.data));
    expect(warnings.some((w) => w.includes("maxCapacity is 5, but the GpuCapacity 'Platform/Gpus' fits 2 of these tasks (2 instances, 1 per instance)"))).toBe(true);
  });

  test.each<[string, Partial<GpuModelServiceProps>, string]>([
    ['an instance type', { instanceType: new ec2.InstanceType('g5.xlarge') }, "invalid 'instanceType': belongs to the GpuCapacity 'Platform/Gpus' this service runs on; set it there, or leave out 'capacity'"],
    ['spot', { spot: true }, "invalid 'spot': belongs to the GpuCapacity 'Platform/Gpus'"],
    ['the instance store', { modelOnInstanceStore: true }, "invalid 'modelOnInstanceStore': belongs to the GpuCapacity"],
    ['a root volume', { rootVolumeGiB: 200 }, "invalid 'rootVolumeGiB': belongs to the GpuCapacity"],
    ['an instance count', { maxInstances: 3 }, "invalid 'maxInstances': belongs to the GpuCapacity"],
    ['two GPUs on its g4dn.xlarge', { gpuCount: 2 },
      "Models/M: invalid 'gpuCount': a g4dn.xlarge has 1 GPU, so a task cannot reserve 2; lower gpuCount or choose a larger instanceType for the GpuCapacity 'Platform/Gpus'"],
  ])('%s beside capacity fails synth', (_name, props, message) => {
    const { app, cluster, stack } = platform();
    const gpus = new GpuCapacity(stack, 'Gpus', { cluster });
    const models = new Stack(app, 'Models', { env });
    expect(() => new GpuModelService(models, 'M', { model: model(models), capacity: gpus, ...props })).toThrow(message);
  });

  test('another cluster, or a VPC, beside capacity fails synth', () => {
    const { app, cluster, stack } = platform();
    const gpus = new GpuCapacity(stack, 'Gpus', { cluster });
    const models = new Stack(app, 'Models', { env });
    const other = new ecs.Cluster(models, 'Other', { vpc: new ec2.Vpc(models, 'Vpc') });
    const source = model(models);
    expect(() => new GpuModelService(models, 'A', { model: source, capacity: gpus, cluster: other }))
      .toThrow("Models/A: invalid 'cluster': must be the cluster of the GpuCapacity 'Platform/Gpus' (or left out), since the tasks run on its instances");
    expect(() => new GpuModelService(models, 'B', { model: source, capacity: gpus, vpc: other.vpc }))
      .toThrow("Models/B: invalid 'vpc': is the VPC of the GpuCapacity 'Platform/Gpus''s cluster; leave it out");
  });

  test.each<[string, (p: ReturnType<typeof platform>) => void, string]>([
    ['a cluster from another stack', ({ app, cluster }) => new GpuCapacity(new Stack(app, 'Other', { env }), 'Gpus', { cluster }),
      "Other/Gpus: invalid 'cluster': is in stack 'Platform': ECS keeps a cluster's capacity providers in the cluster's stack, so define the GpuCapacity in stack 'Platform'"],
    ['an imported cluster', ({ stack, cluster }) => new GpuCapacity(stack, 'Gpus', {
      cluster: ecs.Cluster.fromClusterAttributes(stack, 'C', { clusterName: 'team', vpc: cluster.vpc }) as ecs.Cluster,
    }), "Platform/Gpus: invalid 'cluster': must be an ecs.Cluster defined in this app"],
    ['a non-GPU instance', ({ stack, cluster }) => new GpuCapacity(stack, 'Gpus', { cluster, instanceType: new ec2.InstanceType('m5.large') }),
      "Platform/Gpus: invalid 'instanceType': must be a g4dn, g5 or g6 size"],
    ['no instances', ({ stack, cluster }) => new GpuCapacity(stack, 'Gpus', { cluster, maxInstances: 0 }),
      "Platform/Gpus: invalid 'maxInstances': must be an integer from 1 to 1000, got 0"],
    ['a tiny root volume', ({ stack, cluster }) => new GpuCapacity(stack, 'Gpus', { cluster, rootVolumeGiB: 8 }),
      "Platform/Gpus: invalid 'rootVolumeGiB': must be an integer from 30 to 16384, got 8"],
  ])('GpuCapacity refuses %s', (_name, make, message) => {
    expect(() => make(platform())).toThrow(message);
  });
});
