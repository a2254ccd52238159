import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/**
 * A VPC for a model service: public subnets for the load balancer, private subnets with one
 * NAT gateway for the tasks, an S3 gateway endpoint (model downloads stay off the NAT and cost
 * nothing), flow logs, and a default security group with no rules.
 */
export function createDefaultVpc(scope: Construct): ec2.Vpc {
  const vpc = new ec2.Vpc(scope, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    restrictDefaultSecurityGroup: true,
    subnetConfiguration: [
      { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      { name: 'Private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
    ],
    gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
  });
  vpc.addFlowLog('FlowLogs', {
    destination: ec2.FlowLogDestination.toCloudWatchLogs(
      new logs.LogGroup(scope, 'FlowLogsGroup', { retention: logs.RetentionDays.ONE_MONTH }),
    ),
    trafficType: ec2.FlowLogTrafficType.REJECT,
  });
  return vpc;
}
