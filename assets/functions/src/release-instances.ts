import { AutoScalingClient, DescribeAutoScalingGroupsCommand, SetInstanceProtectionCommand } from '@aws-sdk/client-auto-scaling';
import { CustomResourceEvent, respond } from './cfn-response';

/** The most instances one SetInstanceProtection call takes. */
const BATCH = 50;

/**
 * A GPU service's custom resource, deleted after the service and before its Auto Scaling group:
 * it lifts the scale-in protection that ECS managed termination protection keeps on the instances,
 * so that CloudFormation can terminate them and delete the group. Without it, `cdk destroy` waits
 * for instances that nothing will ever let go (aws/aws-cdk#18179). Create and Update do nothing.
 */
let client: AutoScalingClient | undefined;

/** Lambda calls it with (event, context): it takes nothing else from its caller. */
export async function handler(event: CustomResourceEvent): Promise<void> {
  const autoscaling = (client ??= new AutoScalingClient({}));
  const group = event.ResourceProperties.AutoScalingGroupName;
  try {
    if (event.RequestType === 'Delete') {
      const released = await releaseInstances(autoscaling, group);
      console.log(`released ${released} instance(s) of ${group} from scale-in protection`);
    }
    await respond(event, 'SUCCESS', group);
  } catch (err) {
    const reason = `could not lift scale-in protection from the instances of ${group}: ${(err as Error).name}: ${(err as Error).message}`;
    console.error(reason);
    await respond(event, 'FAILED', event.PhysicalResourceId ?? group, reason);
  }
}

async function releaseInstances(client: AutoScalingClient, group: string): Promise<number> {
  const described = await client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [group] }));
  const protectedIds = (described.AutoScalingGroups?.[0]?.Instances ?? [])
    .filter((i) => i.ProtectedFromScaleIn && i.InstanceId)
    .map((i) => i.InstanceId!);
  for (let start = 0; start < protectedIds.length; start += BATCH) {
    await client.send(new SetInstanceProtectionCommand({
      AutoScalingGroupName: group,
      InstanceIds: protectedIds.slice(start, start + BATCH),
      ProtectedFromScaleIn: false,
    }));
  }
  return protectedIds.length;
}
