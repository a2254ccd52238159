import { InvalidPropError, PropOwner } from '../validation';

/** Fargate's valid memory sizes (MiB) for each CPU size (units): [min, max, step]. */
const FARGATE_MEMORY: Record<number, [number, number, number]> = {
  256: [512, 2048, 512], // except 1536: see allowedMemory
  512: [1024, 4096, 1024],
  1024: [2048, 8192, 1024],
  2048: [4096, 16384, 1024],
  4096: [8192, 30720, 1024],
  8192: [16384, 61440, 4096],
  16384: [32768, 122880, 8192],
};

function allowedMemory(cpu: number): number[] {
  if (cpu === 256) return [512, 1024, 2048];
  const [min, max, step] = FARGATE_MEMORY[cpu];
  const sizes: number[] = [];
  for (let m = min; m <= max; m += step) sizes.push(m);
  return sizes;
}

/** Throws unless `cpu` and `memoryLimitMiB` are a pair Fargate accepts. */
export function checkFargateSize(where: PropOwner, cpu: number, memoryLimitMiB: number): void {
  if (!(cpu in FARGATE_MEMORY)) {
    throw new InvalidPropError(where, 'cpu', `must be one of ${Object.keys(FARGATE_MEMORY).join(', ')} (CPU units), got ${cpu}`);
  }
  const memory = allowedMemory(cpu);
  if (!memory.includes(memoryLimitMiB)) {
    const [min, max, step] = FARGATE_MEMORY[cpu];
    const allowed = cpu === 256 ? memory.join(', ') + ' MiB' : `${min} to ${max} MiB in steps of ${step}`;
    throw new InvalidPropError(where, 'memoryLimitMiB', `with cpu ${cpu} must be ${allowed}, got ${memoryLimitMiB}`);
  }
}
