import { InvalidPropError, PropOwner } from '../validation';

/** What ECS can reserve on a GPU instance size. */
export interface GpuInstanceSpec {
  readonly gpus: number;
  readonly vcpus: number;
  readonly memoryGiB: number;
}

type Size = 'xlarge' | '2xlarge' | '4xlarge' | '8xlarge' | '12xlarge' | '16xlarge' | '24xlarge' | '48xlarge' | 'metal';
type Row = [gpus: number, vcpus: number, memoryGiB: number];

/** GPUs, vCPUs and memory of each size: g4dn has NVIDIA T4s, g5 A10Gs, g6 L4s. */
const GPU_INSTANCES: Record<'g4dn' | 'g5' | 'g6', Partial<Record<Size, Row>>> = {
  g4dn: {
    'xlarge': [1, 4, 16], '2xlarge': [1, 8, 32], '4xlarge': [1, 16, 64], '8xlarge': [1, 32, 128],
    '12xlarge': [4, 48, 192], '16xlarge': [1, 64, 256], 'metal': [8, 96, 384],
  },
  g5: {
    'xlarge': [1, 4, 16], '2xlarge': [1, 8, 32], '4xlarge': [1, 16, 64], '8xlarge': [1, 32, 128],
    '12xlarge': [4, 48, 192], '16xlarge': [1, 64, 256], '24xlarge': [4, 96, 384], '48xlarge': [8, 192, 768],
  },
  g6: {
    'xlarge': [1, 4, 16], '2xlarge': [1, 8, 32], '4xlarge': [1, 16, 64], '8xlarge': [1, 32, 128],
    '12xlarge': [4, 48, 192], '16xlarge': [1, 64, 256], '24xlarge': [4, 96, 384], '48xlarge': [8, 192, 768],
  },
};

/** Memory the OS, Docker and the ECS agent keep for themselves on a GPU host. */
const HOST_RESERVED_MIB = 1536;

/** The spec of a g4dn, g5 or g6 size; any other instance type fails synth with the allowed ones. */
export function gpuInstanceSpec(where: PropOwner, instanceType: string): GpuInstanceSpec {
  const [family, size] = instanceType.split('.') as [keyof typeof GPU_INSTANCES, Size];
  const row = GPU_INSTANCES[family]?.[size];
  if (!row) {
    const allowed = Object.entries(GPU_INSTANCES).map(([f, sizes]) => `${f}.{${Object.keys(sizes).join(',')}}`).join(', ');
    throw new InvalidPropError(where, 'instanceType', `must be a g4dn, g5 or g6 size (${allowed}), got '${instanceType}'`);
  }
  const [gpus, vcpus, memoryGiB] = row;
  return { gpus, vcpus, memoryGiB };
}

/** Memory a task can reserve on one instance of `spec`. */
export function usableMemoryMiB(spec: GpuInstanceSpec): number {
  return spec.memoryGiB * 1024 - HOST_RESERVED_MIB;
}
