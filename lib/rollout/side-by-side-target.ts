import { CfnResource, Lazy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { ecsPrincipalOf } from './ecs-principal';

export interface SideBySideTargetProps {
  readonly listener: elbv2.IApplicationListener;
  readonly targetGroup: elbv2.IApplicationTargetGroup;
  readonly alternateTargetGroup: elbv2.IApplicationTargetGroup;
  readonly productionRule: elbv2.ApplicationListenerRule;
  readonly testRule: elbv2.ApplicationListenerRule;
  /** Whether the listener is this service's own (a new load balancer), not a shared one. */
  readonly ownsListener: boolean;
}

/**
 * What ECS needs to run a canary, linear or blue/green rollout on the load balancer: the
 * alternate target group, the production and test rules, and a role to move traffic with.
 *
 * The role may do what AWS's AmazonECSInfrastructureRolePolicyForLoadBalancers allows, narrowed
 * to this service: register targets in its two target groups and change its listener and its two
 * rules. Only the Describe actions, which support no resource scoping, are on '*'.
 */
export class SideBySideTarget extends Construct {
  public readonly role: iam.Role;
  public readonly alternateTarget: ecs.AlternateTarget;
  private readonly rules: CfnResource[];

  constructor(scope: Construct, id: string, props: SideBySideTargetProps) {
    super(scope, id);
    this.rules = [props.productionRule, props.testRule].map((r) => r.node.defaultChild as CfnResource);
    this.role = new iam.Role(this, 'LoadBalancerRole', {
      assumedBy: ecsPrincipalOf(this),
      description: 'Lets ECS shift traffic between the model service\'s two target groups during rollouts',
    });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ReadLoadBalancer',
      actions: ['elasticloadbalancing:DescribeListeners', 'elasticloadbalancing:DescribeRules',
        'elasticloadbalancing:DescribeTargetGroups', 'elasticloadbalancing:DescribeTargetHealth'],
      resources: ['*'],
    }));
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'RegisterTasks',
      actions: ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'],
      resources: [props.targetGroup.targetGroupArn, props.alternateTargetGroup.targetGroupArn],
    }));
    // ECS shifts traffic on the two rules. Only a listener this service owns may be modified too;
    // a shared one (`existingListener`) is the platform's, and its other rules are other services'.
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ShiftTraffic',
      actions: props.ownsListener ? ['elasticloadbalancing:ModifyListener', 'elasticloadbalancing:ModifyRule'] : ['elasticloadbalancing:ModifyRule'],
      resources: [...(props.ownsListener ? [props.listener.listenerArn] : []), props.productionRule.listenerRuleArn, props.testRule.listenerRuleArn],
    }));
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'The elasticloadbalancing Describe actions support no resource scoping; every action that changes anything is scoped to this service\'s listener, rules and target groups.',
    });
    this.alternateTarget = new ecs.AlternateTarget('Alternate', {
      alternateTargetGroup: props.alternateTargetGroup,
      productionListener: ecs.ListenerRuleConfiguration.applicationListenerRule(props.productionRule),
      testListener: ecs.ListenerRuleConfiguration.applicationListenerRule(props.testRule),
      role: this.role,
    });
  }

  /**
   * aws-cdk-lib makes a service depend on every listener rule that forwards to its target group;
   * the service also names these two in its load balancer configuration, which orders them
   * already. Its DependsOn keeps every other dependency and drops the two redundant ones
   * (cfn-lint W3005). Rendered at synth, once dependencies are known.
   */
  public dropRedundantDependencies(service: ecs.BaseService): void {
    const cfn = service.node.defaultChild as CfnResource;
    const stack = Stack.of(cfn);
    cfn.addOverride('DependsOn', Lazy.list({
      produce: () => cfn.obtainDependencies()
        .filter((d): d is CfnResource => d instanceof CfnResource && !this.rules.includes(d))
        .map((d) => stack.resolve(d.logicalId) as string)
        .sort(),
    }, { omitEmpty: true }));
  }
}
