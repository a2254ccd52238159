import { Stack, StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
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
}

const ROLLOUTS: Record<string, () => Rollout> = {
  rolling: Rollout.rolling,
  canary: Rollout.canary,
  linear: Rollout.linear,
  blueGreen: Rollout.blueGreen,
};

/**
 * The example app's stack: one model service with a new VPC, cluster and load balancer: internal
 * unless given a certificate (public HTTPS) or told plainHttp (public HTTP, for a trial).
 */
export class ModelServingExampleStack extends Stack {
  public readonly modelService: ModelServiceBase;

  constructor(scope: Construct, id: string, props: ModelServingExampleStackProps = {}) {
    super(scope, id, props);
    if (props.modelPath && props.modelUri) {
      throw new Error("Give either '-c modelPath=...' or '-c modelUri=...', not both");
    }
    const model = props.modelUri
      ? ModelSource.fromS3Uri(props.modelUri)
      : ModelSource.fromAsset(props.modelPath ?? SAMPLE_MODEL_FILE);

    const compute = props.compute ?? 'cpu';
    const image = ServingImage.fromModelServer({ gpu: compute === 'gpu', modelVersion: props.modelVersion });
    if (props.certificateArn && props.plainHttp) throw new Error("Give either '-c certificateArn=...' (HTTPS) or '-c plainHttp=true', not both");
    const rollout = ROLLOUTS[props.rollout ?? 'rolling'];
    if (!rollout) throw new Error(`'-c rollout' must be one of ${Object.keys(ROLLOUTS).join(', ')}, got '${props.rollout}'`);
    const common = {
      model,
      image,
      modelVersion: props.modelVersion,
      rollout: rollout(),
      goldenRequests: props.goldenRequests ? GoldenRequests.fromFile(props.goldenRequests) : undefined,
      certificate: props.certificateArn ? acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn) : undefined,
      allowPlainHttp: props.plainHttp || undefined,
    };
    if (compute === 'gpu') {
      this.modelService = new GpuModelService(this, 'Model', {
        ...common,
        instanceType: props.instanceType ? new ec2.InstanceType(props.instanceType) : undefined,
        spot: props.spot,
      });
    } else if (compute === 'cpu') {
      if (props.instanceType || props.spot) throw new Error("'-c instanceType' and '-c spot' apply to '-c compute=gpu' only");
      this.modelService = new FargateModelService(this, 'Model', common);
    } else {
      throw new Error(`'-c compute' must be 'cpu' (Fargate) or 'gpu' (EC2 GPU capacity), got '${compute}'`);
    }
  }
}
