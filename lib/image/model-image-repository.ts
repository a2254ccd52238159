import { DefaultStackSynthesizer, DefaultStackSynthesizerProps, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { checkIntRange, InvalidPropError } from '../validation';

/** Properties of a {@link ModelImageRepository}. */
export interface ModelImageRepositoryProps {
  /**
   * The repository name. It is a literal, not a token: the serving stacks' synthesizer writes it
   * into their asset manifests, which cdk-assets reads before anything is deployed.
   */
  readonly repositoryName: string;
  /**
   * Expire all but the newest `maxImageCount` images (by push time). Off by default, because it
   * can delete images that services still run: ECR counts images by when they were pushed, and
   * re-tagging or deploying an image again does not make it newer, so an image that rarely
   * changes (the model fetcher, a server whose dependencies did not move) becomes the oldest and
   * is expired while task definitions still name it; every new task then fails to pull it. Set it
   * only with a count far above the images your services, and their rollback targets, can name.
   * @default - no count rule: only untagged images (interrupted pushes) expire, after a day
   */
  readonly maxImageCount?: number;
  /**
   * How the images are encrypted at rest.
   * @default ecr.RepositoryEncryption.KMS
   */
  readonly encryption?: ecr.RepositoryEncryption;
  /**
   * The KMS key, with KMS encryption.
   * @default - the AWS-managed key for ECR (aws/ecr)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * The qualifier of the CDK bootstrap stack whose image-publishing role pushes the images, as
   * `cdk bootstrap --qualifier` set it.
   * @default - the `@aws-cdk/core:bootstrapQualifier` context value, else 'hnb659fds'
   */
  readonly bootstrapQualifier?: string;
  /**
   * What happens to the repository and its images when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** What ECR allows in a repository name. */
const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/**
 * An ECR repository of its own for the model images, set up for a CI pipeline that publishes
 * first, gates on the scan and deploys after: scan on push, immutable tags, encryption at rest, a
 * lifecycle rule that expires only untagged images, and push access for the CDK bootstrap
 * image-publishing role that `cdk-assets` (and `cdk-model-serving publish`) assume.
 *
 * Deploy it in its own stack, before the serving stacks, and give those stacks
 * {@link stackSynthesizer}: cdk-assets then pushes their image assets here, each tagged with its
 * content hash (immutable), and the task definitions name that tag.
 */
export class ModelImageRepository extends Construct {
  /** {@link stackSynthesizer} for a repository named by a stack elsewhere in the app. */
  public static synthesizerFor(repositoryName: string, props: DefaultStackSynthesizerProps = {}): DefaultStackSynthesizer {
    if (props.imageAssetsRepositoryName && props.imageAssetsRepositoryName !== repositoryName) {
      throw new InvalidPropError('ModelImageRepository.synthesizerFor', 'imageAssetsRepositoryName',
        `is set by this method to '${repositoryName}'; leave it out, got '${props.imageAssetsRepositoryName}'`);
    }
    return new DefaultStackSynthesizer({ ...props, imageAssetsRepositoryName: repositoryName });
  }

  public readonly repository: ecr.Repository;
  public readonly repositoryName: string;
  /** The bootstrap qualifier whose image-publishing role may push here. */
  public readonly bootstrapQualifier: string;

  constructor(scope: Construct, id: string, props: ModelImageRepositoryProps) {
    super(scope, id);
    if (Token.isUnresolved(props.repositoryName) || !REPOSITORY_NAME.test(props.repositoryName) || props.repositoryName.length > 256) {
      throw new InvalidPropError(this, 'repositoryName',
        `must be a literal ECR repository name (lowercase letters, digits, '.', '_', '-' and '/' between them, up to 256 characters), got '${props.repositoryName}'`);
    }
    checkIntRange(this, 'maxImageCount', props.maxImageCount, 1, 10_000);
    const encryption = props.encryption ?? ecr.RepositoryEncryption.KMS;
    if (props.encryptionKey && encryption !== ecr.RepositoryEncryption.KMS) {
      throw new InvalidPropError(this, 'encryptionKey', `needs encryption RepositoryEncryption.KMS, got ${encryption.value}`);
    }

    this.repositoryName = props.repositoryName;
    this.repository = new ecr.Repository(this, 'Repository', {
      repositoryName: props.repositoryName,
      imageScanOnPush: true,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      encryption,
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      lifecycleRules: [
        { rulePriority: 1, description: 'Untagged images (an interrupted push) expire after a day', tagStatus: ecr.TagStatus.UNTAGGED, maxImageAge: Duration.days(1) },
        ...(props.maxImageCount !== undefined
          ? [{ rulePriority: 2, description: `Keep the last ${props.maxImageCount} images (by push time)`, tagStatus: ecr.TagStatus.ANY, maxImageCount: props.maxImageCount }]
          : []),
      ],
    });

    const stack = Stack.of(this);
    const qualifier = this.bootstrapQualifier = props.bootstrapQualifier
      ?? this.node.tryGetContext('@aws-cdk/core:bootstrapQualifier')
      ?? DefaultStackSynthesizer.DEFAULT_QUALIFIER;
    const publishingRole = stack.formatArn({
      service: 'iam', region: '', resource: 'role',
      resourceName: `cdk-${qualifier}-image-publishing-role-${stack.account}-${stack.region}`,
    });
    this.repository.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CdkImagePublishing',
      principals: [new iam.ArnPrincipal(publishingRole)],
      actions: [
        // What `docker push` and cdk-assets' existence check need ...
        'ecr:BatchCheckLayerAvailability', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload',
        'ecr:PutImage', 'ecr:DescribeImages', 'ecr:DescribeRepositories',
        // ... what `publish --add-tag` reads to tag an image again, and what `scan-gate` reads.
        'ecr:BatchGetImage', 'ecr:DescribeImageScanFindings',
      ],
    }));
  }

  /**
   * A synthesizer for the stacks whose image assets belong in this repository. Make those stacks
   * depend on this one's stack, so that `cdk deploy --all` creates the repository first.
   */
  public stackSynthesizer(props: DefaultStackSynthesizerProps = {}): DefaultStackSynthesizer {
    // The role that pushes must be the one the repository admits: one bootstrap qualifier.
    if (props.qualifier && props.qualifier !== this.bootstrapQualifier) {
      throw new InvalidPropError(this, 'qualifier',
        `must be the repository's bootstrapQualifier '${this.bootstrapQualifier}', got '${props.qualifier}'; set bootstrapQualifier on the repository instead`);
    }
    return ModelImageRepository.synthesizerFor(this.repositoryName, { qualifier: this.bootstrapQualifier, ...props });
  }
}
