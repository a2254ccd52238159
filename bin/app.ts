#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ModelServingExampleStack } from './example-stack';

/**
 * The example app. With no context it serves the sample iris model on Fargate:
 *
 *   npx cdk deploy                                   # the sample model
 *   npx cdk deploy -c modelPath=./model.joblib       # a local file or directory
 *   npx cdk deploy -c modelUri=s3://bucket/key       # an object (or s3://bucket/prefix/) already in S3
 *   npx cdk deploy -c stackName=iris-prod            # another stack name
 *   npx cdk deploy -c compute=gpu                    # EC2 GPU capacity (g4dn.xlarge) instead of Fargate
 *   npx cdk deploy -c compute=gpu -c instanceType=g5.xlarge -c spot=true
 */
const app = new App();
const context = (key: string): string | undefined => app.node.tryGetContext(key) || undefined;

new ModelServingExampleStack(app, context('stackName') ?? 'ModelServing', {
  modelPath: context('modelPath'),
  modelUri: context('modelUri'),
  compute: context('compute'),
  instanceType: context('instanceType'),
  spot: context('spot') === undefined ? undefined : String(context('spot')) === 'true',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
