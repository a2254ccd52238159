import { Duration, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { BundledFunction } from '../functions/bundled-function';
import { BUNDLES } from '../functions/bundles';
import { TEST_HEADER } from '../service/model-endpoint';
import { ecsPrincipalOf } from './ecs-principal';
import { GoldenRequests } from './golden-requests';

export interface GoldenRequestHookProps {
  readonly golden: GoldenRequests;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly listener: elbv2.IApplicationListener;
  /** The path every server route is below ('' for none). */
  readonly routePrefix: string;
  /** The value the test rule wants in the test header (a dynamic reference CloudFormation resolves). */
  readonly testHeaderValue: string;
}

/**
 * The ECS lifecycle hook (POST_TEST_TRAFFIC_SHIFT) that sends the golden requests to the new
 * tasks through the test rule, and fails the deployment, which ECS then rolls back, on a wrong,
 * failed or slow answer. Its function runs in the VPC (the test rule admits the VPC's addresses
 * only) and may read the golden file, describe the listener and find the load balancer's
 * addresses; ECS may invoke it, and nothing else.
 */
export class GoldenRequestHook extends Construct {
  public readonly target: ecs.DeploymentLifecycleLambdaTarget;
  public readonly function: BundledFunction;

  constructor(scope: Construct, id: string, props: GoldenRequestHookProps) {
    super(scope, id);
    const file = new s3assets.Asset(this, 'File', { path: props.golden.filePath });
    const maxLatencyMs = props.golden.maxLatency.toMilliseconds();
    // Each request may take its latency bound three times over, plus 5 s, before it counts as no answer.
    const timeout = Math.min(900, 60 + props.golden.count * Math.ceil((3 * maxLatencyMs + 5000) / 1000));

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Golden-request hook: no inbound; out to the load balancer and the AWS APIs',
      allowAllOutbound: true,
    });
    this.function = new BundledFunction(this, 'Handler', {
      bundle: BUNDLES.goldenRequests,
      description: 'Checks new model tasks against golden requests before they take production traffic',
      timeout: Duration.seconds(timeout),
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [securityGroup],
      environment: {
        GOLDEN_BUCKET: file.s3BucketName,
        GOLDEN_KEY: file.s3ObjectKey,
        LISTENER_ARN: props.listener.listenerArn,
        ROUTE_PREFIX: props.routePrefix,
        TEST_HEADER,
        TEST_HEADER_VALUE: props.testHeaderValue,
        MAX_LATENCY_MS: String(maxLatencyMs),
      },
    });
    // The golden file's object alone (Asset.grantRead would give the whole assets bucket's List and Get*).
    this.function.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ReadGoldenFile',
      actions: ['s3:GetObject'],
      resources: [file.bucket.arnForObjects(file.s3ObjectKey)],
    }));
    this.function.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'FindTheLoadBalancer',
      actions: ['elasticloadbalancing:DescribeListeners', 'ec2:DescribeNetworkInterfaces'],
      resources: ['*'],
    }));
    Validations.of(this.function.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'elasticloadbalancing:DescribeListeners and ec2:DescribeNetworkInterfaces/DescribeSubnets only read, and support no resource scoping. ' +
        'ec2:CreateNetworkInterface, DeleteNetworkInterface and Assign/UnassignPrivateIpAddresses are what Lambda needs to attach the function to ' +
        'its subnets (AWS\'s AWSLambdaVPCAccessExecutionRole, inline); the interfaces do not exist before Lambda creates them, so they cannot be named.',
    });

    const invoker = new iam.Role(this, 'InvokeRole', {
      assumedBy: ecsPrincipalOf(this),
      description: 'Lets ECS invoke the golden-request hook during deployments',
    });
    invoker.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.function.functionArn] }));
    this.target = new ecs.DeploymentLifecycleLambdaTarget(this.function.function, 'GoldenRequests', {
      role: invoker,
      lifecycleStages: [ecs.DeploymentLifecycleStage.POST_TEST_TRAFFIC_SHIFT],
    });
  }
}
