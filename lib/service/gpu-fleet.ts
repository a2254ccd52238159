import { Duration, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ReleaseScaleInProtection } from '../functions/release-scale-in-protection';
import { GPU_AGENT_NAMESPACE, gpuInstanceUserData } from './gpu-user-data';

/** What a fleet of GPU container instances is built from. */
export interface GpuFleetOptions {
  readonly cluster: ecs.Cluster;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly instanceType: ec2.InstanceType;
  readonly maxInstances: number;
  readonly spot: boolean;
  readonly modelOnInstanceStore: boolean;
  readonly rootVolumeGiB: number;
  /** The Service dimension the instances' GPU metrics are published under. */
  readonly metricsName: string;
}

/** A fleet of GPU container instances, associated with its cluster. */
export interface GpuFleet {
  /** The instances' role: the ECS agent's permissions only. */
  readonly instanceRole: iam.Role;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly capacityProvider: ecs.AsgCapacityProvider;
  /** Deleted before the instances: a service on the fleet depends on it (see ReleaseScaleInProtection). */
  readonly releaseOnDelete: ReleaseScaleInProtection;
}

/**
 * Adds GPU container instances to `scope`: an Auto Scaling group of the ECS GPU-optimized Amazon
 * Linux 2023 AMI, its capacity provider (managed scaling and termination protection), the
 * provider's association with the cluster, and the custom resource that lets `cdk destroy` delete
 * them. `GpuModelService` builds one in its own scope, `GpuCapacity` in its own; the construct ids
 * are the same in both, so a service's resources keep their logical IDs.
 */
export function addGpuFleet(scope: Construct, options: GpuFleetOptions): GpuFleet {
  const instanceRole = new iam.Role(scope, 'InstanceRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  const autoScalingGroup = gpuInstances(scope, instanceRole, options);
  const capacityProvider = new ecs.AsgCapacityProvider(scope, 'Capacity', {
    autoScalingGroup,
    enableManagedScaling: true,
    enableManagedTerminationProtection: true,
    targetCapacityPercent: 100,
  });
  options.cluster.addAsgCapacityProvider(capacityProvider);
  grantEcsAgent(instanceRole, options.cluster);
  const releaseOnDelete = new ReleaseScaleInProtection(scope, 'ReleaseOnDelete', { autoScalingGroup, after: capacityProvider });
  return { instanceRole, autoScalingGroup, capacityProvider, releaseOnDelete };
}

/**
 * The instance role's permissions: the ECS agent's own, and nothing else. (aws-cdk-lib would add
 * logs and ECR actions on '*' as well; these tasks pull their images and write their logs with
 * the execution role, so the instances need neither.)
 */
function grantEcsAgent(role: iam.Role, cluster: ecs.ICluster): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ecs:RegisterContainerInstance', 'ecs:DeregisterContainerInstance', 'ecs:Submit*'],
    resources: [cluster.clusterArn],
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ecs:Poll', 'ecs:StartTelemetrySession'],
    resources: ['*'],
    conditions: { ArnEquals: { 'ecs:cluster': cluster.clusterArn } },
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['ecs:DiscoverPollEndpoint'], resources: ['*'] }));
  // The CloudWatch agent's GPU metrics: into its own namespace only.
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['cloudwatch:PutMetricData'],
    resources: ['*'],
    conditions: { StringEquals: { 'cloudwatch:namespace': GPU_AGENT_NAMESPACE } },
  }));
  Validations.of(role).acknowledge(
    {
      id: 'AwsSolutions-IAM5[Action::ecs:Submit*]',
      reason: 'The ECS agent reports task and container state through the ecs:Submit* actions, which are scoped to this cluster\'s ARN.',
    },
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecs:DiscoverPollEndpoint and cloudwatch:PutMetricData support no resource scoping; ecs:Poll and ecs:StartTelemetrySession are conditioned on this cluster, PutMetricData on the CloudWatch agent\'s namespace.',
    },
  );
}

function gpuInstances(scope: Construct, role: iam.Role, options: GpuFleetOptions): autoscaling.AutoScalingGroup {
  const userData = gpuInstanceUserData({
    spot: options.spot,
    modelOnInstanceStore: options.modelOnInstanceStore,
    metricsServiceName: options.metricsName,
  });

  const launchTemplate = new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
    instanceType: options.instanceType,
    machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
    userData,
    requireImdsv2: true,
    httpPutResponseHopLimit: 1,
    detailedMonitoring: true,
    // Immutable to aws-cdk-lib: the ECS agent's permissions are added by grantEcsAgent, exactly.
    role: role.withoutPolicyUpdates(),
    securityGroup: new ec2.SecurityGroup(scope, 'InstanceSecurityGroup', {
      vpc: options.vpc,
      description: 'GPU container instances: no inbound traffic (tasks have their own ENIs)',
      allowAllOutbound: true,
    }),
    blockDevices: [{
      deviceName: '/dev/xvda',
      volume: ec2.BlockDeviceVolume.ebs(options.rootVolumeGiB, {
        volumeType: ec2.EbsDeviceVolumeType.GP3,
        encrypted: true,
        deleteOnTermination: true,
      }),
    }],
  });

  const asg = new autoscaling.AutoScalingGroup(scope, 'Instances', {
    vpc: options.vpc,
    vpcSubnets: options.subnets,
    minCapacity: 0,
    maxCapacity: options.maxInstances,
    ...(options.spot
      ? {
        mixedInstancesPolicy: {
          launchTemplate,
          instancesDistribution: {
            onDemandBaseCapacity: 0,
            onDemandPercentageAboveBaseCapacity: 0,
            spotAllocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
          },
        },
      }
      : { launchTemplate }),
    healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
    newInstancesProtectedFromScaleIn: true,
  });
  if (options.spot) {
    Validations.of(asg).acknowledge({
      id: 'AwsSolutions-EC26',
      reason: 'The instances\' only volume is the launch template\'s root volume, which is encrypted; the rule does not look through a mixed-instances policy into its launch template.',
    });
  }
  Validations.of(asg).acknowledge({
    id: 'AwsSolutions-AS3',
    reason: 'The ECS capacity provider launches and terminates these instances; its scaling activity is recorded in the ECS service events and CloudTrail, so a separate SNS notification per scaling event adds nothing.',
  });
  return asg;
}
