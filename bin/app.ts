#!/usr/bin/env node
import { App, Stack, StackProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ModelImageRepository } from '../lib';
import { readContext, stackProps } from './context';
import { ModelServingExampleStack } from './example-stack';

/**
 * The example app. With no context it serves the sample iris model on Fargate:
 *
 *   npx cdk deploy -c plainHttp=true                 # the sample model, public on plain HTTP (a trial)
 *   npx cdk deploy -c certificateArn=arn:aws:acm:... # public on HTTPS
 *   npx cdk deploy                                   # an internal endpoint, reachable from the VPC
 *   npx cdk deploy -c modelPath=./model.joblib       # a local file or directory
 *   npx cdk deploy -c modelUri=s3://bucket/key       # an object (or s3://bucket/prefix/) already in S3
 *   npx cdk deploy -c modelUri=s3://bucket/key -c modelKmsKeyArn=arn:aws:kms:...  # in an SSE-KMS bucket
 *   npx cdk deploy -c stackName=iris-prod            # another stack name
 *   npx cdk deploy -c compute=gpu                    # EC2 GPU capacity (g4dn.xlarge) instead of Fargate
 *   npx cdk deploy -c compute=gpu -c instanceType=g5.xlarge -c spot=true
 *   npx cdk deploy -c modelVersion=iris-2026-11      # the version /health, logs, metrics and dashboard show
 *   npx cdk deploy -c rollout=canary                 # or linear, blueGreen: new models beside the old, then traffic moves
 *   npx cdk deploy -c rollout=canary -c goldenRequests=assets/sample-model/golden.jsonl
 *
 * The CI setup (see .github/workflows/deploy.yml) adds the model image's own ECR repository, in a
 * stack of its own (`<stackName>Images`) that deploys first:
 *
 *   npx cdk deploy --all -c imageRepository=iris-model-server --no-asset-prebuild
 */
const app = new App();
const { context, problems } = readContext(app);
if (problems.length > 0) fail(problems);
const stackName = context.stackName ?? 'ModelServing';
const env: StackProps['env'] = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };

try {
  const repositoryName = context.imageRepository;
  const images = repositoryName ? new Stack(app, `${stackName}Images`, {
    env, description: `ECR repository ${repositoryName} for the ${stackName} model images`,
  }) : undefined;
  const repository = images && new ModelImageRepository(images, 'ModelImages', { repositoryName: repositoryName! });
  const serving = new ModelServingExampleStack(app, stackName, { ...stackProps(context), synthesizer: repository?.stackSynthesizer(), env });
  if (images) serving.addStackDependency(images, 'the model images are pushed to its repository');
  console.error(`cdk-model-serving: stack ${stackName} serves ${serving.servedModel}`);
} catch (err) {
  // A prop the library refuses: its one-line message, not a stack trace.
  fail([(err as Error).message]);
}

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

/** Prints each problem on a line of its own and ends synth. */
function fail(lines: string[]): never {
  for (const line of lines) console.error(`error: ${line}`);
  process.exit(1);
}
