import * as ec2 from 'aws-cdk-lib/aws-ec2';

/** Where task-scoped Docker volumes live on the host: the instance store is mounted here. */
const DOCKER_VOLUMES_DIR = '/var/lib/docker/volumes';

export interface GpuInstanceUserDataOptions {
  /** Spot capacity: ECS drains an instance's tasks on its interruption notice. */
  readonly spot: boolean;
  /** Mount the NVMe instance store where Docker keeps task volumes. */
  readonly modelOnInstanceStore: boolean;
  /** The Service dimension the CloudWatch agent's GPU metrics are aggregated under. */
  readonly metricsServiceName: string;
}

/** The user data of a GPU container instance: ECS agent settings, the instance store, the GPU metrics agent. */
export function gpuInstanceUserData(options: GpuInstanceUserDataOptions): ec2.UserData {
  const userData = ec2.UserData.forLinux();
  // Tasks use the task role, never the instance role: block their access to the instance's IMDS.
  userData.addCommands('echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config');
  // ECS drains a Spot instance's tasks as soon as it gets its interruption notice. (CDK adds this
  // only for a launch configuration's spotPrice, never for a mixed-instances policy.)
  if (options.spot) userData.addCommands('echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config');
  if (options.modelOnInstanceStore) userData.addCommands(...mountInstanceStore(DOCKER_VOLUMES_DIR));
  userData.addCommands(...gpuMetricsAgent(options.metricsServiceName));
  return userData;
}

/** The CloudWatch agent's namespace, where it publishes the GPU metrics. */
export const GPU_AGENT_NAMESPACE = 'CWAgent';

/**
 * User data that installs the CloudWatch agent (from the Amazon Linux 2023 repository) and has it
 * publish each GPU's utilization and memory from nvidia-smi every minute, aggregated by `service`
 * (the metrics' only dimension), without the per-host series.
 */
function gpuMetricsAgentConfig(service: string): object {
  return {
    agent: { metrics_collection_interval: 60, omit_hostname: true },
    metrics: {
      namespace: GPU_AGENT_NAMESPACE,
      aggregation_dimensions: [['Service']],
      metrics_collected: {
        nvidia_gpu: {
          measurement: ['utilization_gpu', 'memory_used', 'memory_total'],
          metrics_collection_interval: 60,
          append_dimensions: { Service: service },
        },
      },
    },
  };
}

function gpuMetricsAgent(service: string): string[] {
  const config = '/opt/aws/amazon-cloudwatch-agent/etc/gpu-metrics.json';
  // In the background: the ECS agent starts after user data, and tasks need not wait for metrics.
  return [
    `cat > /tmp/gpu-metrics.json <<'EOF'`,
    JSON.stringify(gpuMetricsAgentConfig(service)),
    'EOF',
    '(',
    '  if dnf install -y -q amazon-cloudwatch-agent; then',
    `    install -m 0644 /tmp/gpu-metrics.json ${config}`,
    `    /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:${config}`,
    '  else',
    '    echo "the CloudWatch agent could not be installed: no GPU metrics from this instance" >&2',
    '  fi',
    ') >>/var/log/gpu-metrics-agent.log 2>&1 &',
  ];
}

/**
 * User data that formats the first NVMe instance-store device and mounts it at `dir`. User data
 * runs before the ECS agent starts, so no task volume exists yet; Docker is stopped around the
 * mount so its volume metadata is created on the new file system, not hidden beneath it.
 */
function mountInstanceStore(dir: string): string[] {
  return [
    'dev=$(ls /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_* 2>/dev/null | head -n 1)',
    'if [ -n "$dev" ]; then',
    '  blkid "$dev" >/dev/null 2>&1 || mkfs.xfs -q "$dev"',
    '  systemctl stop docker.socket docker.service',
    `  mkdir -p ${dir}`,
    `  mountpoint -q ${dir} || mount -o noatime "$dev" ${dir}`,
    '  systemctl start docker.service',
    `  echo "instance store $dev mounted at ${dir}"`,
    'else',
    '  echo "no NVMe instance store found: task volumes stay on the root volume" >&2',
    'fi',
  ];
}
