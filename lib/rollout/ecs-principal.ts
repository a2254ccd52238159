import { Aws, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';

/**
 * ECS as a role's principal, for the roles ECS assumes during this stack's deployments (traffic
 * shifting, the golden-request hook): only on behalf of this account's ECS resources in this
 * region (`aws:SourceAccount`, `aws:SourceArn`), the confused-deputy guard AWS recommends.
 */
export function ecsPrincipalOf(scope: IConstruct): iam.IPrincipal {
  const stack = Stack.of(scope);
  return new iam.ServicePrincipal('ecs.amazonaws.com').withConditions({
    StringEquals: { 'aws:SourceAccount': stack.account },
    ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:ecs:${stack.region}:${stack.account}:*` },
  });
}
