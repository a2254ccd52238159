import { parseArgs } from 'node:util';
import { AssetPublishing, DefaultAwsClient, EventType, IPublishProgress } from '@aws-cdk/cdk-assets-lib';
import { BatchGetImageCommand, DescribeImagesCommand, DescribeRepositoriesCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { assetManifests, ImageDestination, imageDestinations } from './assembly';
import { ecrClient } from './aws';
import { CliError, describeError, UsageError } from './errors';
import { checkRepositorySettings } from './repository-settings';
import { table } from './table';

export const PUBLISH_USAGE = `Usage: cdk-model-serving publish [--app cdk.out] [--add-tag TAG ...] [--json] [--verbose]

Publishes every asset of a synthesized cloud assembly with cdk-assets (images to ECR, files to
S3), then prints each image's repository and digest. It first checks that each image repository
keeps tags immutable and scans on push, which the task definitions and the scan gate rely on.

--add-tag TAG gives every image another tag, TAG-<image>, where <image> is the image's construct
path (e.g. git-1a2b3c4-model-task-server), so that an image in ECR can be traced to the build that
shipped it. Several images share a repository, and tags there never move from one image to another.`;

/** What ECR allows in an image tag. */
const IMAGE_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$/;

/** Manifest types that BatchGetImage may return; the new tag keeps the image's own. */
export const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
];

export interface PublishedImage {
  readonly asset: string;
  readonly displayName: string;
  readonly repositoryName: string;
  readonly repositoryUri: string;
  readonly imageTag: string;
  readonly imageDigest: string;
  /** The image by digest: what to scan, pull or pin. */
  readonly imageUri: string;
  readonly tags: string[];
}

export async function publish(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'app': { type: 'string', default: 'cdk.out' },
      'add-tag': { type: 'string', multiple: true, default: [] },
      'json': { type: 'boolean', default: false },
      'verbose': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const extraTags = values['add-tag']!;
  for (const tag of extraTags) {
    if (!IMAGE_TAG.test(tag)) throw new UsageError(`--add-tag '${tag}' is not a valid image tag (letters, digits, '_', '.', '-', up to 128 characters)`);
  }

  const manifests = assetManifests(values.app!);
  const aws = new DefaultAwsClient();
  // Before anything is built or pushed: the repositories must keep tags immutable and scan on push.
  await checkRepositorySettings(await imageDestinations(manifests, aws));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  for (const manifest of manifests) {
    if (manifest.entries.length === 0) continue;
    const publishing = new AssetPublishing(manifest, {
      aws,
      throwOnError: false,
      publishInParallel: true,
      // Docker's and cdk-assets' output goes to stderr, keeping stdout for the result.
      subprocessOutputDestination: 'publish',
      progressListener: { onPublishEvent: (type: EventType, event: IPublishProgress) => progress(type, event, values.verbose!, log) },
    });
    await publishing.publish();
    if (publishing.hasFailures) {
      const [first] = publishing.failures;
      const more = publishing.failures.length > 1 ? ` (and ${publishing.failures.length - 1} more failed)` : '';
      throw new CliError(`asset ${first.asset.id} failed to publish: ${describeError(first.error)}${more}`);
    }
  }

  const images: PublishedImage[] = [];
  for (const destination of await imageDestinations(manifests, aws)) {
    images.push(await describePublished(destination, extraTags));
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ images }, undefined, 2)}\n`);
  } else if (images.length === 0) {
    process.stdout.write('no image assets in this assembly\n');
  } else {
    process.stdout.write(table(['IMAGE', 'REPOSITORY', 'DIGEST', 'TAGS'],
      images.map((i) => [i.displayName, i.repositoryUri, i.imageDigest, i.tags.join(',')])));
  }
  return 0;
}

function progress(type: EventType, event: IPublishProgress, verbose: boolean, log: (line: string) => void): void {
  if (type === EventType.SHELL_STDOUT || type === EventType.SHELL_STDERR) {
    if (verbose) process.stderr.write(event.message);
    return;
  }
  const always = [EventType.START, EventType.SUCCESS, EventType.FAIL, EventType.UPLOAD, EventType.FOUND];
  if (verbose || always.includes(type)) log(`[${String(event.percentComplete).padStart(3)}%] ${type}: ${event.message}`);
}

/** Looks up the pushed image's digest, and adds the extra tags. */
async function describePublished(destination: ImageDestination, extraTags: string[]): Promise<PublishedImage> {
  const ecr = ecrClient(destination);
  const { repositoryName, imageTag } = destination;
  const [repository] = (await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }))).repositories ?? [];
  const [image] = (await ecr.send(new DescribeImagesCommand({ repositoryName, imageIds: [{ imageTag }] }))).imageDetails ?? [];
  if (!repository?.repositoryUri || !image?.imageDigest) {
    throw new CliError(`ECR does not describe ${repositoryName}:${imageTag} after publishing it`);
  }
  const tags = [imageTag];
  for (const prefix of extraTags) {
    const tag = traceTag(prefix, destination.displayName);
    await addTag(ecr, repositoryName, image.imageDigest, tag);
    tags.push(tag);
  }
  return {
    asset: destination.id,
    displayName: destination.displayName,
    repositoryName,
    repositoryUri: repository.repositoryUri,
    imageTag,
    imageDigest: image.imageDigest,
    imageUri: `${repository.repositoryUri}@${image.imageDigest}`,
    tags,
  };
}

/** `<prefix>-<construct path>`, e.g. git-1a2b3c4-model-task-server, within ECR's 128 characters. */
function traceTag(prefix: string, displayName: string): string {
  const image = displayName.replace(/\/AssetImage$/, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `${prefix}-${image || 'image'}`.slice(0, 128).replace(/[-.]+$/, '');
}

/** Tags an image again without pulling it: the same manifest, put under another tag. */
async function addTag(ecr: ECRClient, repositoryName: string, imageDigest: string, tag: string): Promise<void> {
  const [image] = (await ecr.send(new BatchGetImageCommand({
    repositoryName, imageIds: [{ imageDigest }], acceptedMediaTypes: MANIFEST_TYPES,
  }))).images ?? [];
  if (!image?.imageManifest) throw new CliError(`ECR returned no manifest for ${repositoryName}@${imageDigest}`);
  try {
    await ecr.send(new PutImageCommand({
      repositoryName, imageManifest: image.imageManifest, imageManifestMediaType: image.imageManifestMediaType, imageDigest, imageTag: tag,
    }));
  } catch (err: any) {
    if (err?.name === 'ImageAlreadyExistsException') return; // this image already has the tag: a re-run
    if (err?.name === 'ImageTagAlreadyExistsException') {
      throw new CliError(`tag '${tag}' already names another image in ${repositoryName}, and tags there are immutable: give each build its own --add-tag, e.g. git-<commit>`);
    }
    throw err;
  }
}
