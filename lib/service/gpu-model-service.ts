import { Annotations, Duration, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, Dependable, IDependable } from 'constructs';
import { ServingImage } from '../image/serving-image';
import { ComputeMetrics } from '../operations/service-operations';
import { checkIntRange, definedOnly, InvalidPropError } from '../validation';
import { GPU_FLEET_DEFAULTS, GpuCapacity, GpuFleetProps } from './gpu-capacity';
import { addGpuFleet, GpuFleet } from './gpu-fleet';
import { gpuInstanceSpec, usableMemoryMiB } from './gpu-instances';
import { GPU_AGENT_NAMESPACE } from './gpu-user-data';
import { ModelServiceBase } from './model-service-base';
import { ModelServiceBaseProps } from './service-props';

export interface GpuModelServiceProps extends ModelServiceBaseProps, GpuFleetProps {
  /**
   * GPU instances that a platform stack owns and several services share. Without it, the service
   * builds its own instances, capacity provider and association in its own stack (from
   * `instanceType`, `spot`, `modelOnInstanceStore`, `rootVolumeGiB` and `maxInstances`, which are
   * then the capacity's settings and refused here).
   * @default - GPU instances of the service's own
   */
  readonly capacity?: GpuCapacity;

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
  /** The Service dimension of the GPU metrics: this service's, or its shared capacity's. */
  private readonly gpuMetricsName: string;

  constructor(scope: Construct, id: string, props: GpuModelServiceProps) {
    // ECS allows an EC2 container up to 10 minutes between SIGTERM and SIGKILL.
    super(scope, id, onCapacity(scope, id, props), Duration.minutes(10));
    const capacity = props.capacity;
    const instanceType = capacity?.instanceType ?? props.instanceType ?? GPU_FLEET_DEFAULTS.instanceType;
    const spec = capacity?._spec ?? gpuInstanceSpec(this, instanceType.toString());
    const gpuCount = props.gpuCount ?? 1;
    checkIntRange(this, 'gpuCount', gpuCount, 1, 8);
    if (gpuCount > spec.gpus) {
      throw new InvalidPropError(this, 'gpuCount',
        `a ${instanceType} has ${spec.gpus} GPU${spec.gpus > 1 ? 's' : ''}, so a task cannot reserve ${gpuCount}; ` +
        `lower gpuCount or choose a larger instanceType${capacity ? ` for the GpuCapacity '${capacity.node.path}'` : ''}`);
    }
    const tasksPerInstance = Math.floor(spec.gpus / gpuCount);
    const usable = usableMemoryMiB(spec);
    const memoryLimitMiB = props.memoryLimitMiB ?? Math.floor(usable / tasksPerInstance);
    checkIntRange(this, 'memoryLimitMiB', memoryLimitMiB, 512, usable);

    let fleet: GpuFleet;
    if (capacity) {
      this.cluster = capacity.cluster;
      fleet = {
        instanceRole: capacity.instanceRole,
        autoScalingGroup: capacity.autoScalingGroup,
        capacityProvider: capacity.capacityProvider,
        releaseOnDelete: capacity._releaseOnDelete,
      };
      this.gpuMetricsName = capacity.metricsName;
      const fits = capacity.maxInstances * tasksPerInstance;
      if (this._settings.maxCapacity > fits) {
        Annotations.of(this).addWarningV2('cdk-model-serving:gpuCapacityTooSmall',
          `maxCapacity is ${this._settings.maxCapacity}, but the GpuCapacity '${capacity.node.path}' fits ${fits} of these tasks ` +
          `(${capacity.maxInstances} instances, ${tasksPerInstance} per instance), fewer when other services share it`);
      }
    } else {
      const cluster = ownCluster(this, props) ?? this.defaultCluster();
      this.cluster = cluster;
      checkIntRange(this, 'rootVolumeGiB', props.rootVolumeGiB, 30, 16384);
      const maxInstances = props.maxInstances ?? Math.ceil(this._settings.maxCapacity / tasksPerInstance);
      checkIntRange(this, 'maxInstances', maxInstances, 1, 1000);
      fleet = addGpuFleet(this, {
        ...GPU_FLEET_DEFAULTS,
        ...definedOnly({ spot: props.spot, modelOnInstanceStore: props.modelOnInstanceStore, rootVolumeGiB: props.rootVolumeGiB }),
        instanceType,
        maxInstances,
        cluster,
        vpc: this.vpc,
        subnets: this.taskSubnets,
        metricsName: this.metricsServiceName,
      });
      this.gpuMetricsName = this.metricsServiceName;
    }
    this.instanceRole = fleet.instanceRole;
    this.autoScalingGroup = fleet.autoScalingGroup;
    this.capacityProvider = fleet.capacityProvider;
    const cluster = this.cluster;

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
    this.service.node.addDependency(fleet.releaseOnDelete);
    this._attachService(this.service, this.gpuMetrics());
  }

  /**
   * GPU utilization and GPU memory in use, which ECS does not report: the CloudWatch agent on each
   * instance reads them from nvidia-smi and publishes them (namespace CWAgent) aggregated under
   * this service's name, or, on a shared `capacity`, under the capacity's (all its instances).
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
      dimensionsMap: { Service: this.gpuMetricsName },
      statistic: 'Average',
      period: Duration.minutes(1),
      label,
      ...props,
    });
  }
}

/** The fleet settings a shared capacity holds, which a service on it must leave out. */
const CAPACITY_SETTINGS = ['instanceType', 'spot', 'modelOnInstanceStore', 'rootVolumeGiB', 'maxInstances'] as const;

/** The base's props on a shared capacity: its cluster, after refusing the settings the capacity owns. */
function onCapacity(scope: Construct, id: string, props: GpuModelServiceProps): ModelServiceBaseProps {
  const capacity = props.capacity;
  if (!capacity) return props;
  const where = scope.node.path ? `${scope.node.path}/${id}` : id;
  for (const setting of CAPACITY_SETTINGS) {
    if (props[setting] !== undefined) {
      throw new InvalidPropError(where, setting,
        `belongs to the GpuCapacity '${capacity.node.path}' this service runs on; set it there, or leave out 'capacity'`);
    }
  }
  if (props.vpc) {
    throw new InvalidPropError(where, 'vpc', `is the VPC of the GpuCapacity '${capacity.node.path}''s cluster; leave it out`);
  }
  if (props.cluster && props.cluster !== capacity.cluster) {
    throw new InvalidPropError(where, 'cluster',
      `must be the cluster of the GpuCapacity '${capacity.node.path}' (or left out), since the tasks run on its instances`);
  }
  return { ...props, cluster: capacity.cluster };
}

/** The cluster given for a service that builds its own GPU instances, which must be able to take them. */
function ownCluster(service: GpuModelService, props: GpuModelServiceProps): ecs.Cluster | undefined {
  if (!props.cluster) return undefined;
  if (!(props.cluster instanceof ecs.Cluster)) {
    throw new InvalidPropError(service, 'cluster', 'must be an ecs.Cluster defined in this app, so the GPU capacity provider can be added to it');
  }
  if (Stack.of(props.cluster) !== Stack.of(service)) {
    // ECS keeps a cluster's capacity providers in one ClusterCapacityProviderAssociations
    // resource in the cluster's stack; it would refer to this stack's instances, which refer
    // to the cluster: a dependency cycle between the two stacks.
    const other = Stack.of(props.cluster).stackName;
    throw new InvalidPropError(service, 'cluster',
      `is in stack '${other}', but a GPU service adds its capacity provider to the cluster, ` +
      `which must then happen in that stack and would refer back to this one (a dependency cycle). Define a ` +
      `GpuCapacity in stack '${other}' and pass it as 'capacity', or omit 'cluster' and pass 'vpc' to give the service a cluster of its own`);
  }
  return props.cluster;
}
