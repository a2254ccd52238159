#!/usr/bin/env node
// The baseline of `npm run bench:synth`: a bare ApplicationLoadBalancedFargateService app, as
// `cdk init app --language typescript` and the aws-ecs-patterns README would write it.
import { App, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';

const app = new App();
const stack = new Stack(app, 'BarePattern', { env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION } });
new ecsPatterns.ApplicationLoadBalancedFargateService(stack, 'Service', {
  taskImageOptions: { image: ecs.ContainerImage.fromRegistry('public.ecr.aws/nginx/nginx:latest'), containerPort: 80 },
  memoryLimitMiB: 2048,
  cpu: 1024,
});
