import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { Construct } from 'constructs';
import { MODEL_SERVER_DIR } from '../asset-paths';
import { ModelContainerContract } from '../container-contract';
import { InvalidPropError } from '../validation';
import { checkExtraRequirements } from './server-requirements';

/** Options for an image built from a Docker build context. */
export interface ServingImageBuildOptions {
  /**
   * The Dockerfile, relative to the build context.
   * @default 'Dockerfile'
   */
  readonly file?: string;
  /**
   * Build arguments.
   * @default - none
   */
  readonly buildArgs?: Record<string, string>;
  /**
   * The platform the image is built for. It must match the task's CPU architecture; the default
   * keeps an Apple-silicon laptop from shipping an arm64 image to x86 tasks.
   * @default Platform.LINUX_AMD64
   */
  readonly platform?: Platform;
}

/** Options for the model server that ships with this library. */
export interface ModelServerImageOptions {
  /**
   * Build the GPU image (`Dockerfile.gpu`: an nvidia/cuda base with PyTorch) instead of the CPU one.
   * @default false
   */
  readonly gpu?: boolean;
  /**
   * Recorded in the image as the `ai.model.version` label and the MODEL_VERSION variable.
   * @default 'unversioned'
   */
  readonly modelVersion?: string;
  /**
   * Extra build arguments, e.g. BASE_IMAGE for a mirror of the Python base image.
   * @default - none
   */
  readonly buildArgs?: Record<string, string>;
  /**
   * Packages a model needs beside the server's own, as exact pins (`name==version`), e.g.
   * `['lightgbm==4.7.0']` or `['xgboost==3.1.2']`. pip installs them into the image from wheels,
   * resolving what they need within the server's pins (its requirement file is the constraint);
   * pin those too, for an image that builds the same every time. A package the server pins
   * already is refused: its version is the server's.
   * @default - none
   */
  readonly extraRequirements?: string[];
}

/** What a service needs to run a serving image. */
export interface ServingImageConfig {
  readonly image: ecs.ContainerImage;
  /**
   * The model version the image was built for: the service's, unless it names its own.
   * @default - none
   */
  readonly modelVersion?: string;
  /**
   * The container health check command, when the image is known to have one.
   * @default - no container health check; the load balancer's check on the health path still applies
   */
  readonly healthCheckCommand?: string[];
  /**
   * The user the container runs as, when the image is known to have one.
   * @default - the image's own USER
   */
  readonly user?: string;
  /**
   * Which of this library's model server images this is: `cpu` or `gpu` (CUDA). Synth then checks
   * the model's files against the formats that image serves, and refuses the GPU image on Fargate.
   * @default - another image: its model files and compute are not checked
   */
  readonly modelServer?: string;
}

/**
 * The model-serving container image. Whatever it is, it must serve the HTTP contract of the
 * built-in server: `GET <health path>` and `POST /predict` on the container port, with the model
 * read from `MODEL_DIR`.
 */
export abstract class ServingImage {
  /** The model server that ships with this library (`assets/model-server`), built as an image asset. */
  public static fromModelServer(options: ModelServerImageOptions = {}): ServingImage {
    checkExtraRequirements(options.extraRequirements ?? [], options.gpu ? 'gpu' : 'cpu');
    return new BuiltInServerImage(options);
  }

  /** A team's own Docker build context, built as an image asset and pushed to ECR by cdk-assets. */
  public static fromDirectory(directory: string, options: ServingImageBuildOptions = {}): ServingImage {
    const dockerfile = path.join(directory, options.file ?? 'Dockerfile');
    if (!fs.existsSync(dockerfile)) {
      throw new InvalidPropError(
        'ServingImage.fromDirectory', 'directory', `${dockerfile} does not exist; give a Docker build context that contains it`,
      );
    }
    return new ContainerImageServingImage(imageAsset(directory, options));
  }

  /** An image already in an ECR repository. Prefer an immutable tag or a digest (`sha256:...`). */
  public static fromEcrRepository(repository: ecr.IRepository, tagOrDigest: string = 'latest'): ServingImage {
    return new ContainerImageServingImage(ecs.ContainerImage.fromEcrRepository(repository, tagOrDigest));
  }

  /** An image in a public registry, e.g. `ghcr.io/team/server:1.2.0`. */
  public static fromRegistry(name: string): ServingImage {
    return new ContainerImageServingImage(ecs.ContainerImage.fromRegistry(name));
  }

  /** Called by the service construct that runs this image. */
  public abstract bind(scope: Construct): ServingImageConfig;
}

/** ecs.ContainerImage.fromAsset with this library's defaults. */
export function imageAsset(directory: string, options: ServingImageBuildOptions = {}): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(directory, {
    file: options.file,
    buildArgs: options.buildArgs,
    platform: options.platform ?? Platform.LINUX_AMD64,
  });
}

class BuiltInServerImage extends ServingImage {
  constructor(private readonly options: ModelServerImageOptions) {
    super();
  }

  public bind(_scope: Construct): ServingImageConfig {
    return {
      image: imageAsset(MODEL_SERVER_DIR, {
        file: this.options.gpu ? 'Dockerfile.gpu' : undefined,
        buildArgs: {
          MODEL_VERSION: this.options.modelVersion ?? 'unversioned',
          ...(this.options.extraRequirements?.length ? { EXTRA_REQUIREMENTS: this.options.extraRequirements.join(' ') } : {}),
          ...this.options.buildArgs,
        },
      }),
      healthCheckCommand: ['CMD', 'python3', '-m', 'model_server.healthcheck'],
      user: ModelContainerContract.USER,
      modelServer: this.options.gpu ? 'gpu' : 'cpu',
      modelVersion: this.options.modelVersion,
    };
  }
}

class ContainerImageServingImage extends ServingImage {
  constructor(private readonly image: ecs.ContainerImage) {
    super();
  }

  public bind(_scope: Construct): ServingImageConfig {
    return { image: this.image };
  }
}
