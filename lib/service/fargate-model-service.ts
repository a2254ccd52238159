import { Duration } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { Construct } from 'constructs';
import { checkIntRange } from '../validation';
import { checkFargateSize } from './fargate-sizes';
import { ModelServiceBase } from './model-service-base';
import { ModelServiceBaseProps } from './service-props';

export interface FargateModelServiceProps extends ModelServiceBaseProps {
  /**
   * Task CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384.
   * @default 1024
   */
  readonly cpu?: number;

  /**
   * Task memory in MiB; it must be a size Fargate allows for `cpu`.
   * @default 2048
   */
  readonly memoryLimitMiB?: number;

  /**
   * Task ephemeral storage in GiB, 21-200. The model volume lives on it: raise it for models
   * larger than a few GiB.
   * @default - 20 GiB, Fargate's default
   */
  readonly ephemeralStorageGiB?: number;
}

/**
 * A model behind an Application Load Balancer on ECS Fargate: each task downloads the model
 * from S3 with an init container, then serves `POST /predict`, with `GET /health` as the
 * load balancer's health check.
 */
export class FargateModelService extends ModelServiceBase {
  public readonly service: ecs.FargateService;
  public readonly cluster: ecs.ICluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;

  constructor(scope: Construct, id: string, props: FargateModelServiceProps) {
    // Fargate gives a container at most 2 minutes between SIGTERM and SIGKILL.
    super(scope, id, props, Duration.minutes(2));
    const cpu = props.cpu ?? 1024;
    const memoryLimitMiB = props.memoryLimitMiB ?? 2048;
    checkFargateSize(this, cpu, memoryLimitMiB);
    checkIntRange(this, 'ephemeralStorageGiB', props.ephemeralStorageGiB, 21, 200);

    this.cluster = props.cluster ?? this.defaultCluster();

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu,
      memoryLimitMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    // One gunicorn worker per whole vCPU: prediction is CPU-bound.
    this._addContainers(this.taskDefinition, { workers: Math.max(1, Math.floor(cpu / 1024)) });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      assignPublicIp: false,
      ...this._serviceDefaults(),
    });
    this._attachService(this.service);
  }
}
