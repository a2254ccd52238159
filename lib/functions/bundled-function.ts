import * as path from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { assertBundleCurrent } from './bundle-sources';
import { Bundle, bundleFile } from './bundles';

export interface BundledFunctionProps {
  /** The function's bundle (`BUNDLES.goldenRequests`, say): its folder is the function's code. */
  readonly bundle: Bundle;
  readonly description: string;
  readonly timeout: Duration;
  readonly environment?: Record<string, string>;
  /** The VPC to run in. @default - outside any VPC */
  readonly vpc?: ec2.IVpc;
  /** @default - the VPC's private subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** @default - a new security group */
  readonly securityGroups?: ec2.ISecurityGroup[];
}

/**
 * One of the library's Lambda functions, from its bundle: the newest Node.js runtime the app's
 * aws-cdk-lib knows, its own log group (kept a month), and a role that may write there and nothing
 * else until the caller grants more.
 */
export class BundledFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: BundledFunctionProps) {
    super(scope, id);
    assertBundleCurrent(props.bundle);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH });
    this.role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(this.role);
    if (props.vpc) {
      // What AWSLambdaVPCAccessExecutionRole grants, inline: the function's own network interfaces.
      // (aws-cdk-lib would attach that managed policy, but the function gets an immutable view.)
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'VpcNetworkInterfaces',
        actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        resources: ['*'],
      }));
    }
    // The newest Node.js runtime that the app's aws-cdk-lib names for the stack's region; the
    // bundles target Node.js 22 and run on any later one.
    const runtime = lambda.determineLatestNodeRuntime(this);
    this.function = new lambda.Function(this, 'Function', {
      runtime,
      code: lambda.Code.fromAsset(path.dirname(bundleFile(props.bundle))),
      handler: 'index.handler',
      description: props.description,
      timeout: props.timeout,
      memorySize: 256,
      // aws-cdk-lib makes a function depend on the whole role it is given, the role it already
      // names among it (a redundant DependsOn: cfn-lint W3005). It gets a view of the role, which
      // it names by ARN, and depends on the role's policy alone. Grants go to `role`.
      role: iam.Role.fromRoleArn(this, 'RoleArn', this.role.roleArn, { mutable: false }),
      logGroup,
      environment: props.environment,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
    });
    this.function.node.addDependency(this.role.node.findChild('DefaultPolicy'));
    const newestKnown = newestNodeRuntime();
    if (runtime.name !== newestKnown) {
      Validations.of(this.function).acknowledge({
        id: 'AwsSolutions-L1',
        reason: `The function runs ${runtime.name}, the newest Node.js runtime aws-cdk-lib's regional facts name for this stack's region; ` +
          `cdk-nag compares it with ${newestKnown}, the newest aws-cdk-lib knows anywhere, which this region's facts do not list yet.`,
      });
    }
  }
}

/** The newest Node.js runtime the app's aws-cdk-lib knows in any region: the one cdk-nag's AwsSolutions-L1 asks for. */
function newestNodeRuntime(): string {
  const version = (name: string) => Number(/^nodejs(\d+)/.exec(name)?.[1] ?? 0);
  return lambda.Runtime.ALL.filter((r) => r.family === lambda.RuntimeFamily.NODEJS && version(r.name) > 0)
    .reduce((newest, r) => (version(r.name) > version(newest.name) ? r : newest)).name;
}
