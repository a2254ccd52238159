import * as path from 'node:path';
import { Stack, StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { FargateModelService, GoldenRequests, GpuModelService, ModelServiceBase, ModelSource, Rollout, ServingImage } from '../lib';
import { SAMPLE_MODEL_FILE } from '../lib/asset-paths';

export interface ModelServingExampleStackProps extends StackProps {
  /**
   * A local model file or directory.
   * @default - the sample iris model, unless modelUri is given
   */
  readonly modelPath?: string;
  /**
   * An existing model in S3: `s3://bucket/key` or `s3://bucket/prefix/`.
   * @default - none: modelPath is used
   */
  readonly modelUri?: string;
  /**
   * The ARN of the KMS key that encrypts the bucket of `modelUri` (SSE-KMS): the task role may
   * decrypt with it.
   * @default - the bucket uses S3-managed or AWS-managed keys
   */
  readonly modelKmsKeyArn?: string;
  /**
   * The model version: recorded in the server image (label `ai.model.version`), and what
   * /health, the logs, the metrics and the dashboard call the model.
   * @default - the model's checksum (or S3 key)
   */
  readonly modelVersion?: string;
  /**
   * `cpu` for Fargate, `gpu` for EC2 GPU capacity.
   * @default 'cpu'
   */
  readonly compute?: string;
  /**
   * The GPU instance type (with compute `gpu`).
   * @default 'g4dn.xlarge'
   */
  readonly instanceType?: string;
  /**
   * Run GPU capacity on Spot (with compute `gpu`).
   * @default false
   */
  readonly spot?: boolean;
  /**
   * An ACM certificate's ARN: the endpoint is public, on HTTPS.
   * @default - no certificate: internal, unless plainHttp
   */
  readonly certificateArn?: string;
  /**
   * Make the endpoint public on plain HTTP (no certificate): for a trial.
   * @default false: without a certificate the load balancer is internal
   */
  readonly plainHttp?: boolean;
  /**
   * How new models reach traffic: `rolling`, `canary`, `linear` or `blueGreen`.
   * @default 'rolling'
   */
  readonly rollout?: string;
  /**
   * A golden-requests file (JSON lines) the new tasks must pass before traffic moves to them;
   * needs a `canary`, `linear` or `blueGreen` rollout.
   * @default - none
   */
  readonly goldenRequests?: string;
  /**
   * Scale to zero tasks after 15 minutes without a request, and wake on the next one (the load
   * balancer answers 503 meanwhile); needs the `rolling` rollout.
   * @default false
   */
  readonly scaleToZero?: boolean;
}

const ROLLOUTS: Record<string, () => Rollout> = {
  rolling: Rollout.rolling,
  canary: Rollout.canary,
  linear: Rollout.linear,
  blueGreen: Rollout.blueGreen,
};

/** What is wrong with a combination of the example stack's props, in the words of the `-c` options that set them: every problem, in one pass. */
export function exampleProblems(props: ModelServingExampleStackProps): string[] {
  const problems: string[] = [];
  if (props.modelPath && props.modelUri) problems.push("give either '-c modelPath=...' or '-c modelUri=...', not both");
  if (props.modelKmsKeyArn && !props.modelUri) problems.push("'-c modelKmsKeyArn' is the key of a bucket's model: it needs '-c modelUri=s3://...'");
  if (props.certificateArn && props.plainHttp) problems.push("give either '-c certificateArn=...' (HTTPS) or '-c plainHttp=true', not both");
  const compute = props.compute ?? 'cpu';
  if (compute !== 'cpu' && compute !== 'gpu') problems.push(`'-c compute' must be 'cpu' (Fargate) or 'gpu' (EC2 GPU capacity), got '${compute}'`);
  if (compute === 'cpu' && (props.instanceType || props.spot !== undefined)) problems.push("'-c instanceType' and '-c spot' apply to '-c compute=gpu' only");
  if (props.rollout && !ROLLOUTS[props.rollout]) problems.push(`'-c rollout' must be one of ${Object.keys(ROLLOUTS).join(', ')}, got '${props.rollout}'`);
  if (props.scaleToZero && (props.rollout ?? 'rolling') !== 'rolling') {
    problems.push("'-c scaleToZero=true' works with rolling deployments only: a service at zero tasks has none to test a canary, linear or blue/green rollout on");
  }
  if (props.goldenRequests && (props.rollout ?? 'rolling') === 'rolling') {
    problems.push("'-c goldenRequests' are checked against the new tasks before traffic moves to them: add '-c rollout=canary' (or linear, blueGreen)");
  }
  return problems;
}

/**
 * The example app's stack: one model service with a new VPC, cluster and load balancer: internal
 * unless given a certificate (public HTTPS) or told plainHttp (public HTTP, for a trial).
 */
export class ModelServingExampleStack extends Stack {
  public readonly modelService: ModelServiceBase;
  /** Which model is served, in words, for the app's one line on stderr. */
  public readonly servedModel: string;

  constructor(scope: Construct, id: string, props: ModelServingExampleStackProps = {}) {
    super(scope, id, props);
    const problems = exampleProblems(props);
    if (problems.length > 0) throw new Error(problems.join('; '));
    const model = props.modelUri
      ? ModelSource.fromS3Uri(props.modelUri, {
        encryptionKey: props.modelKmsKeyArn ? kms.Key.fromKeyArn(this, 'ModelKey', props.modelKmsKeyArn) : undefined,
      })
      : ModelSource.fromAsset(props.modelPath ?? SAMPLE_MODEL_FILE);
    const compute = props.compute ?? 'cpu';
    this.servedModel = `${props.modelUri ?? (props.modelPath ? path.resolve(props.modelPath) : 'the sample iris model')} on ` +
      `${compute === 'gpu' ? `GPU capacity (${props.instanceType ?? 'g4dn.xlarge'}${props.spot ? ', Spot' : ''})` : 'Fargate'}, ${props.rollout ?? 'rolling'} rollouts${props.scaleToZero ? ', scaling to zero when idle' : ''}`;

    const image = ServingImage.fromModelServer({ gpu: compute === 'gpu', modelVersion: props.modelVersion });
    const common = {
      model,
      image,
      modelVersion: props.modelVersion,
      rollout: ROLLOUTS[props.rollout ?? 'rolling'](),
      goldenRequests: props.goldenRequests ? GoldenRequests.fromFile(props.goldenRequests) : undefined,
      certificate: props.certificateArn ? acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn) : undefined,
      allowPlainHttp: props.plainHttp || undefined,
      minCapacity: props.scaleToZero ? 0 : undefined,
    };
    this.modelService = compute === 'gpu'
      ? new GpuModelService(this, 'Model', {
        ...common,
        instanceType: props.instanceType ? new ec2.InstanceType(props.instanceType) : undefined,
        spot: props.spot,
      })
      : new FargateModelService(this, 'Model', common);
  }
}
