import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { FetcherConfig } from './config';
import { downloadObject, DownloadOptions, ListedObject, S3Access } from './download';
import { FetchError } from './errors';
import { Progress } from './progress';
import { Deadline, Semaphore, withRetries } from './retry';
import { formatS3Uri } from './s3-location';
import { extractZip } from './unzip';

/** Objects of a prefix being worked on at once (their HEADs and GETs still share the semaphore). */
const PREFIX_OBJECTS_IN_PROGRESS = 64;

export interface FetchSummary {
  readonly files: number;
  readonly bytes: number;
  readonly verifiedBy: string;
}

/**
 * Puts the model named by `config.source` into `config.modelDir`: one object as
 * `<modelDir>/<basename>`, a prefix as the tree below it, a zip archive as its contents.
 * Multi-file models are assembled in a hidden staging directory and moved into place only
 * once every file is complete, so a failure leaves `modelDir` as it was.
 */
export async function fetchModel(config: FetcherConfig, s3: S3Access, progress: Progress): Promise<FetchSummary> {
  const { source, modelDir } = config;
  await fs.mkdir(modelDir, { recursive: true });
  const options: DownloadOptions = {
    expectedSha256: config.sha256,
    partSize: config.partSize,
    requests: new Semaphore(config.concurrency),
    deadline: new Deadline(config.timeoutSeconds),
    progress,
  };

  if (!source.isPrefix && !config.unpack) {
    const dest = path.join(modelDir, path.posix.basename(source.key));
    const { bytes, verifiedBy } = await downloadObject(s3, source.bucket, source.key, dest, options);
    return { files: 1, bytes, verifiedBy };
  }

  return withStagingDir(modelDir, async (staging) => {
    const summary = source.isPrefix
      ? await downloadPrefix(s3, source.bucket, source.key, staging, options)
      : await downloadArchive(s3, source.bucket, source.key, staging, options);
    await moveEntries(staging, modelDir);
    return summary;
  });
}

async function downloadArchive(
  s3: S3Access, bucket: string, key: string, staging: string, options: DownloadOptions,
): Promise<FetchSummary> {
  const archive = path.join(staging, '.archive.zip');
  const { bytes, verifiedBy } = await downloadObject(s3, bucket, key, archive, options);
  const files = await extractZip(archive, staging).catch((err: Error) => {
    throw new FetchError(`${formatS3Uri(bucket, key)}: ${err.message}`);
  });
  await fs.rm(archive);
  if (files === 0) throw new FetchError(`${formatS3Uri(bucket, key)}: the model archive is empty`);
  return { files, bytes, verifiedBy };
}

async function downloadPrefix(
  s3: S3Access, bucket: string, prefix: string, staging: string, options: DownloadOptions,
): Promise<FetchSummary> {
  const objects = await listObjects(s3.client, bucket, prefix, options.deadline);
  if (objects.length === 0) throw new FetchError(`${formatS3Uri(bucket, prefix)}: no objects under this prefix`);

  let bytes = 0;
  // Objects start in parallel; the shared semaphore bounds the GETs actually in flight.
  const objectOptions = { ...options, expectedSha256: undefined, staged: true };
  const files = objects.map(({ key, ...listed }) => ({ key, listed, dest: path.join(staging, relativeModelPath(bucket, prefix, key)) }));
  for (const dir of new Set(files.map(({ dest }) => path.dirname(dest)))) await fs.mkdir(dir, { recursive: true });
  await runPool(files, PREFIX_OBJECTS_IN_PROGRESS, async ({ key, listed, dest }) => {
    const result = await downloadObject(s3, bucket, key, dest, objectOptions, listed).catch((err: unknown) => {
      throw err instanceof FetchError ? err : new ObjectError(bucket, key, err);
    });
    bytes += result.bytes;
  });
  return { files: objects.length, bytes, verifiedBy: 'size of each object' };
}

/** Every object below `prefix`, following continuation tokens; folder markers are skipped. */
async function listObjects(client: S3Client, bucket: string, prefix: string, deadline: Deadline): Promise<Array<ListedObject & { key: string }>> {
  const objects: Array<ListedObject & { key: string }> = [];
  let token: string | undefined;
  do {
    const page = await withRetries(`${formatS3Uri(bucket, prefix)}: list`, deadline, () =>
      client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token })));
    for (const object of page.Contents ?? []) {
      if (object.Key && !object.Key.endsWith('/')) objects.push({ key: object.Key, size: object.Size ?? 0, etag: object.ETag });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

/** The key's path below the prefix, refused when it would escape the model directory. */
function relativeModelPath(bucket: string, prefix: string, key: string): string {
  const relative = key.slice(prefix.length);
  const parts = relative.split('/');
  if (relative.startsWith('/') || parts.some((p) => p === '..' || p === '.' || p === '')) {
    throw new FetchError(`${formatS3Uri(bucket, key)}: key does not map to a safe relative path below the prefix`);
  }
  return path.join(...parts);
}

/** Wraps an error with the object it happened on, so the one-line message names it. */
export class ObjectError extends Error {
  constructor(readonly bucket: string, readonly key: string, readonly cause: unknown) {
    super(formatS3Uri(bucket, key));
    this.name = 'ObjectError';
  }
}

async function withStagingDir<T>(modelDir: string, body: (staging: string) => Promise<T>): Promise<T> {
  const staging = path.join(modelDir, `.fetch-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(staging);
  try {
    return await body(staging);
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

async function moveEntries(from: string, to: string): Promise<void> {
  for (const name of await fs.readdir(from)) {
    const target = path.join(to, name);
    await fs.rm(target, { recursive: true, force: true });
    await fs.rename(path.join(from, name), target);
  }
}

/** Runs `task` over `items` with at most `limit` in flight; the first failure stops new work. */
async function runPool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await task(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
