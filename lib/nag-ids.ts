import { Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * The id under which cdk-nag's AwsSolutions-IAM5 reports a wildcard resource, so a grant that
 * needs exactly that wildcard can acknowledge exactly that finding and nothing broader. It
 * flattens CloudFormation intrinsics the way cdk-nag does: `Ref` as `<Id>`, `Fn::GetAtt` as
 * `<Id.Attr>`, `Fn::Join` joined, and `${...}` in `Fn::Sub` as `<...>`.
 */
export function iamWildcardResourceId(scope: IConstruct, arn: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(arn))}]`;
}

function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const n = node as Record<string, any>;
  if (n['Fn::Join']) {
    const [delimiter, items] = n['Fn::Join'];
    return (items as unknown[]).map(flatten).join(delimiter);
  }
  if (n['Fn::Sub']) return flatten(n['Fn::Sub']);
  if (n['Fn::GetAtt']) return `<${flatten(n['Fn::GetAtt'][0])}.${flatten(n['Fn::GetAtt'][1])}>`;
  if (n['Fn::ImportValue']) return flatten(n['Fn::ImportValue']);
  if (n.Ref) return `<${flatten(n.Ref)}>`;
  return JSON.stringify(node);
}
