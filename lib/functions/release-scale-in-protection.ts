import { CustomResource, Duration, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, IDependable } from 'constructs';
import { iamWildcardResourceId } from '../nag-ids';
import { BundledFunction } from './bundled-function';
import { BUNDLES } from './bundles';

export interface ReleaseScaleInProtectionProps {
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** What must be deleted before the instances are let go (the capacity provider). */
  readonly after: IDependable;
}

/**
 * Lets `cdk destroy` delete GPU capacity: ECS managed termination protection keeps scale-in
 * protection on the instances, so CloudFormation would wait forever to delete the Auto Scaling
 * group (aws/aws-cdk#18179). This custom resource, deleted after the service and the capacity
 * provider and before the group, lifts that protection. Make the service depend on it.
 */
export class ReleaseScaleInProtection extends Construct {
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: ReleaseScaleInProtectionProps) {
    super(scope, id);
    const handler = new BundledFunction(this, 'Handler', {
      bundle: BUNDLES.releaseInstances,
      description: 'On stack deletion: lifts scale-in protection from the GPU instances so that their Auto Scaling group can be deleted',
      timeout: Duration.minutes(2),
    });
    handler.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['autoscaling:SetInstanceProtection'],
      resources: [props.autoScalingGroup.autoScalingGroupArn],
    }));
    handler.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['autoscaling:DescribeAutoScalingGroups'], resources: ['*'] }));
    Validations.of(handler.role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'autoscaling:DescribeAutoScalingGroups supports no resource scoping; the one action that changes anything, SetInstanceProtection, is scoped to this Auto Scaling group.',
      },
      {
        id: iamWildcardResourceId(this, props.autoScalingGroup.autoScalingGroupArn),
        reason: 'An Auto Scaling group\'s ARN holds its ID, which CloudFormation does not expose; the ARN still names this one group, by its name.',
      },
    );
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: handler.function.functionArn,
      resourceType: 'Custom::ReleaseScaleInProtection',
      properties: { AutoScalingGroupName: props.autoScalingGroup.autoScalingGroupName },
    });
    this.resource.node.addDependency(props.after);
  }
}
