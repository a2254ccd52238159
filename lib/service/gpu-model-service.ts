import { Duration, Stack, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, Dependable, IDependable } from 'constructs';
import { ReleaseScaleInProtection } from '../functions/release-scale-in-protection';
import { ServingImage } from '../image/serving-image';
import { ComputeMetrics } from '../operations/service-operations';
import { checkIntRange, InvalidPropError } from '../validation';
import { gpuInstanceSpec, usableMemoryMiB } from './gpu-instances';
import { GPU_AGENT_NAMESPACE, gpuInstanceUserData } from './gpu-user-data';
import { ModelServiceBase } from './model-service-base';
import { ModelServiceBaseProps } from './service-props';

export interface GpuModelServiceProps extends ModelServiceBaseProps {
  /**
   * The GPU instance type: any g4dn (NVIDIA T4), g5 (A10G) or g6 (L4) size.
   * @default ec2.InstanceType.of(ec2.InstanceClass.G4DN, ec2.InstanceSize.XLARGE): one T4, 4 vCPUs, 16 GiB
   */
  readonly instanceType?: ec2.InstanceType;

  /**
   * GPUs each task reserves; at most the instance type's GPU count.
   * @default 1
   */
  readonly gpuCount?: number;

  /**
   * Memory (MiB) each task reserves; at most what an instance leaves after the OS and the ECS agent.
   * @default - all of one instance's usable memory divided among the tasks its GPUs fit
   */
  readonly memoryLimitMiB?: number;

  /**
   * Run on Spot capacity (price-capacity optimized), with ECS draining tasks from an instance
   * being reclaimed. Spot can be interrupted: keep minCapacity at 2 or more.
   * @default false
   */
  readonly spot?: boolean;

  /**
   * Put the task volumes, the model among them, on the instance's local NVMe instance store
   * (every g4dn, g5 and g6 has one) instead of the EBS root volume, so large models land on fast
   * local disk. The store is formatted at boot and is lost when the instance stops.
   * @default false
   */
  readonly modelOnInstanceStore?: boolean;

  /**
   * The size of each instance's encrypted gp3 root volume, which holds the container images.
   * @default 100
   */
  readonly rootVolumeGiB?: number;

  /**
   * The most GPU instances.
   * @default - enough for maxCapacity tasks
   */
  readonly maxInstances?: number;
}

/**
 * A model behind an Application Load Balancer on ECS with EC2 GPU capacity (g4dn by default).
 * The fetcher, server, load balancer, health checks, rollout and scaling are wired exactly as in
 * `FargateModelService`; the tasks reserve GPUs on instances of an Auto Scaling group (the ECS
 * GPU-optimized Amazon Linux 2023 AMI) that an ECS capacity provider scales.
 */
export class GpuModelService extends ModelServiceBase {
  public readonly service: ecs.Ec2Service;
  public readonly cluster: ecs.ICluster;
  public readonly taskDefinition: ecs.Ec2TaskDefinition;
  /** The GPU instances. */
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The capacity provider that scales the instances for the service. */
  public readonly capacityProvider: ecs.AsgCapacityProvider;
  /** The GPU instances' role: the ECS agent's permissions only. */
  public readonly instanceRole: iam.Role;

  constructor(scope: Construct, id: string, props: GpuModelServiceProps) {
    // ECS allows an EC2 container up to 10 minutes between SIGTERM and SIGKILL.
    super(scope, id, props, Duration.minutes(10));
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.G4DN, ec2.InstanceSize.XLARGE);
    const spec = gpuInstanceSpec(this, instanceType.toString());
    const gpuCount = props.gpuCount ?? 1;
    checkIntRange(this, 'gpuCount', gpuCount, 1, 8);
    if (gpuCount > spec.gpus) {
      throw new InvalidPropError(this, 'gpuCount',
        `a ${instanceType} has ${spec.gpus} GPU${spec.gpus > 1 ? 's' : ''}, so a task cannot reserve ${gpuCount}; ` +
        `lower gpuCount or choose a larger instanceType`);
    }
    const tasksPerInstance = Math.floor(spec.gpus / gpuCount);
    const usable = usableMemoryMiB(spec);
    const memoryLimitMiB = props.memoryLimitMiB ?? Math.floor(usable / tasksPerInstance);
    checkIntRange(this, 'memoryLimitMiB', memoryLimitMiB, 512, usable);
    checkIntRange(this, 'rootVolumeGiB', props.rootVolumeGiB, 30, 16384);
    const maxInstances = props.maxInstances ?? Math.ceil(this._settings.maxCapacity / tasksPerInstance);
    checkIntRange(this, 'maxInstances', maxInstances, 1, 1000);
    if (props.cluster && !(props.cluster instanceof ecs.Cluster)) {
      throw new InvalidPropError(this, 'cluster', 'must be an ecs.Cluster defined in this app, so the GPU capacity provider can be added to it');
    }
    if (props.cluster && Stack.of(props.cluster) !== Stack.of(this)) {
      // ECS keeps a cluster's capacity providers in one ClusterCapacityProviderAssociations
      // resource in the cluster's stack; it would refer to this stack's instances, which refer
      // to the cluster: a dependency cycle between the two stacks.
      throw new InvalidPropError(this, 'cluster',
        `is in stack '${Stack.of(props.cluster).stackName}', but a GPU service adds its capacity provider to the cluster, ` +
        `which must then happen in that stack and would refer back to this one (a dependency cycle). Define the ` +
        `GpuModelService in stack '${Stack.of(props.cluster).stackName}', or omit 'cluster' and pass 'vpc' to give it a cluster of its own`);
    }

    const cluster = (props.cluster as ecs.Cluster | undefined) ?? this.defaultCluster();
    this.cluster = cluster;

    this.instanceRole = new iam.Role(this, 'InstanceRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    this.autoScalingGroup = this.gpuInstances(instanceType, maxInstances, props);
    this.capacityProvider = new ecs.AsgCapacityProvider(this, 'Capacity', {
      autoScalingGroup: this.autoScalingGroup,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
    });
    cluster.addAsgCapacityProvider(this.capacityProvider);
    this.grantEcsAgent(cluster);

    this.taskDefinition = new ecs.Ec2TaskDefinition(this, 'Task', { networkMode: ecs.NetworkMode.AWS_VPC });
    this._addContainers(this.taskDefinition, {
      // One model copy per GPU: one worker per reserved GPU, each on its own (GPU_COUNT).
      workers: gpuCount,
      gpuCount,
      defaultImage: ServingImage.fromModelServer({ gpu: true }),
      // Docker volumes, unlike ECS's host bind mounts, take the owner of the image's mount point,
      // so the non-root fetcher can write the model volume on EC2 as it can on Fargate.
      volume: { dockerVolumeConfiguration: { scope: ecs.Scope.TASK, driver: 'local' } },
      serverOptions: { gpuCount, memoryLimitMiB },
    });

    this.service = new ecs.Ec2Service(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      capacityProviderStrategies: [{ capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 }],
      placementStrategies: [ecs.PlacementStrategy.spreadAcrossInstances()],
      ...this._serviceDefaults(),
    });
    // The service may only name the capacity provider once it is associated with the cluster. The
    // association is created at synth (by the cluster's aspect), so the dependency names it lazily:
    // on it alone, not on the whole cluster, which the service references already.
    const association: IDependable = {};
    Dependable.implement(association, {
      get dependencyRoots() {
        return cluster.node.findAll().filter((c) => c instanceof ecs.CfnClusterCapacityProviderAssociations);
      },
    });
    this.service.node.addDependency(association);
    // Deleted after the service, before the instances: lets `cdk destroy` finish (aws/aws-cdk#18179).
    this.service.node.addDependency(new ReleaseScaleInProtection(this, 'ReleaseOnDelete', {
      autoScalingGroup: this.autoScalingGroup,
      after: this.capacityProvider,
    }));
    this._attachService(this.service, this.gpuMetrics());
  }

  /**
   * GPU utilization and GPU memory in use, which ECS does not report: the CloudWatch agent on each
   * instance reads them from nvidia-smi and publishes them (namespace CWAgent) aggregated under
   * this service's name.
   */
  public metricGpuUtilization(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return this.gpuAgentMetric('nvidia_smi_utilization_gpu', 'GPU utilization', props);
  }

  /** GPU memory in use, as a percentage of the GPUs' memory (CloudWatch agent). */
  public metricGpuMemoryUtilization(props?: cloudwatch.MetricOptions): cloudwatch.IMetric {
    return new cloudwatch.MathExpression({
      expression: '100 * used / total',
      usingMetrics: {
        used: this.gpuAgentMetric('nvidia_smi_memory_used', 'used', props),
        total: this.gpuAgentMetric('nvidia_smi_memory_total', 'total', props),
      },
      label: 'GPU memory in use',
      period: props?.period ?? Duration.minutes(1),
    });
  }

  private gpuMetrics(): ComputeMetrics {
    return { gpuUtilization: this.metricGpuUtilization(), gpuMemoryUsed: this.metricGpuMemoryUtilization() };
  }

  private gpuAgentMetric(metricName: string, label: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: GPU_AGENT_NAMESPACE,
      metricName,
      dimensionsMap: { Service: this.metricsServiceName },
      statistic: 'Average',
      period: Duration.minutes(1),
      label,
      ...props,
    });
  }

  /**
   * The instance role's permissions: the ECS agent's own, and nothing else. (aws-cdk-lib would add
   * logs and ECR actions on '*' as well; these tasks pull their images and write their logs with
   * the execution role, so the instances need neither.)
   */
  private grantEcsAgent(cluster: ecs.ICluster): void {
    const role = this.instanceRole;
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

  private gpuInstances(instanceType: ec2.InstanceType, maxInstances: number, props: GpuModelServiceProps): autoscaling.AutoScalingGroup {
    const userData = gpuInstanceUserData({
      spot: props.spot ?? false,
      modelOnInstanceStore: props.modelOnInstanceStore ?? false,
      metricsServiceName: this.metricsServiceName,
    });

    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType,
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(ecs.AmiHardwareType.GPU),
      userData,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      detailedMonitoring: true,
      // Immutable to aws-cdk-lib: the ECS agent's permissions are added by grantEcsAgent, exactly.
      role: this.instanceRole.withoutPolicyUpdates(),
      securityGroup: new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
        vpc: this.vpc,
        description: 'GPU container instances: no inbound traffic (tasks have their own ENIs)',
        allowAllOutbound: true,
      }),
      blockDevices: [{
        deviceName: '/dev/xvda',
        volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB ?? 100, {
          volumeType: ec2.EbsDeviceVolumeType.GP3,
          encrypted: true,
          deleteOnTermination: true,
        }),
      }],
    });

    const asg = new autoscaling.AutoScalingGroup(this, 'Instances', {
      vpc: this.vpc,
      vpcSubnets: this.taskSubnets,
      minCapacity: 0,
      maxCapacity: maxInstances,
      ...(props.spot
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
    if (props.spot) {
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
}

