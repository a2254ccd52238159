import { Names, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ReleaseScaleInProtection } from '../functions/release-scale-in-protection';
import { checkIntRange, definedOnly, InvalidPropError } from '../validation';
import { addGpuFleet } from './gpu-fleet';
import { GpuInstanceSpec, gpuInstanceSpec } from './gpu-instances';

/** The fleet settings a GPU service without `capacity` takes itself; `GpuCapacityProps` holds the same. */
export interface GpuFleetProps {
  /**
   * The GPU instance type: any g4dn (NVIDIA T4), g5 (A10G) or g6 (L4) size.
   * @default ec2.InstanceType.of(ec2.InstanceClass.G4DN, ec2.InstanceSize.XLARGE): one T4, 4 vCPUs, 16 GiB
   */
  readonly instanceType?: ec2.InstanceType;

  /**
   * Run on Spot capacity (price-capacity optimized), with ECS draining tasks from an instance
   * being reclaimed. Spot can be interrupted: keep each service's minCapacity at 2 or more.
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
}

export interface GpuCapacityProps extends GpuFleetProps {
  /** The cluster the instances join. It must be defined in the same stack as this construct. */
  readonly cluster: ecs.Cluster;

  /**
   * The most GPU instances, for all the services on this capacity together.
   * @default 4
   */
  readonly maxInstances?: number;

  /**
   * The subnets the instances run in.
   * @default - the VPC's private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
}

/** Defaults of the fleet settings, shared by `GpuCapacity` and a `GpuModelService` that builds its own. */
export const GPU_FLEET_DEFAULTS = {
  instanceType: ec2.InstanceType.of(ec2.InstanceClass.G4DN, ec2.InstanceSize.XLARGE),
  spot: false,
  modelOnInstanceStore: false,
  rootVolumeGiB: 100,
};

/**
 * GPU container instances that a platform stack owns and several GPU services share: the Auto
 * Scaling group, its ECS capacity provider and the provider's association with the cluster, all in
 * the cluster's stack. Pass it as `capacity` to each `GpuModelService`, in this stack or in another;
 * ECS managed scaling launches instances as the services' tasks need them.
 *
 * ```ts
 * const gpus = new GpuCapacity(platform, 'Gpus', { cluster, instanceType: new ec2.InstanceType('g5.xlarge') });
 * new GpuModelService(models, 'Resnet', { model, capacity: gpus });
 * ```
 */
export class GpuCapacity extends Construct {
  public readonly cluster: ecs.Cluster;
  public readonly instanceType: ec2.InstanceType;
  /** The most instances, as given or by default. */
  public readonly maxInstances: number;
  /** The GPU instances. */
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The capacity provider that the services' tasks are placed with. */
  public readonly capacityProvider: ecs.AsgCapacityProvider;
  /** The instances' role: the ECS agent's permissions only. */
  public readonly instanceRole: iam.Role;
  /**
   * The `Service` dimension of the instances' GPU metrics (namespace CWAgent): every service on
   * this capacity reports the GPU utilization of all its instances.
   */
  public readonly metricsName: string;
  /** @internal */
  public readonly _spec: GpuInstanceSpec;
  /** @internal */
  public readonly _releaseOnDelete: ReleaseScaleInProtection;

  constructor(scope: Construct, id: string, props: GpuCapacityProps) {
    super(scope, id);
    if (!(props.cluster instanceof ecs.Cluster)) {
      throw new InvalidPropError(this, 'cluster', 'must be an ecs.Cluster defined in this app, so the capacity provider can be added to it');
    }
    if (Stack.of(props.cluster) !== Stack.of(this)) {
      throw new InvalidPropError(this, 'cluster',
        `is in stack '${Stack.of(props.cluster).stackName}': ECS keeps a cluster's capacity providers in the cluster's stack, ` +
        `so define the GpuCapacity in stack '${Stack.of(props.cluster).stackName}'`);
    }
    const settings = { ...GPU_FLEET_DEFAULTS, maxInstances: 4, ...definedOnly(props) };
    this._spec = gpuInstanceSpec(this, settings.instanceType.toString());
    checkIntRange(this, 'maxInstances', settings.maxInstances, 1, 1000);
    checkIntRange(this, 'rootVolumeGiB', settings.rootVolumeGiB, 30, 16384);

    this.cluster = props.cluster;
    this.instanceType = settings.instanceType;
    this.maxInstances = settings.maxInstances;
    this.metricsName = Names.uniqueResourceName(this, { maxLength: 128, separator: '-' });
    const fleet = addGpuFleet(this, {
      ...settings,
      cluster: props.cluster,
      vpc: props.cluster.vpc,
      subnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      metricsName: this.metricsName,
    });
    this.autoScalingGroup = fleet.autoScalingGroup;
    this.capacityProvider = fleet.capacityProvider;
    this.instanceRole = fleet.instanceRole;
    this._releaseOnDelete = fleet.releaseOnDelete;
  }
}
