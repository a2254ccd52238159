import * as path from 'node:path';
import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { FargateModelService, ModelSource } from '../lib';

/** The sample model shipped with the library: an iris classifier. */
export const SAMPLE_MODEL = path.join(__dirname, '..', 'assets', 'sample-model', 'iris.joblib');

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
}

/** The example app's stack: one model service with a new VPC, cluster and load balancer. */
export class ModelServingExampleStack extends Stack {
  public readonly modelService: FargateModelService;

  constructor(scope: Construct, id: string, props: ModelServingExampleStackProps = {}) {
    super(scope, id, props);
    if (props.modelPath && props.modelUri) {
      throw new Error("Give either '-c modelPath=...' or '-c modelUri=...', not both");
    }
    const model = props.modelUri
      ? ModelSource.fromS3Uri(props.modelUri)
      : ModelSource.fromAsset(props.modelPath ?? SAMPLE_MODEL);

    this.modelService = new FargateModelService(this, 'Model', { model });
  }
}
