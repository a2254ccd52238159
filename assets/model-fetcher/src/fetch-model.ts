import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { filesBelow } from '../../../lib/model/files';
import { runPool, Semaphore } from './concurrency';
import { FetcherConfig } from './config';
import { downloadObject, DownloadOptions } from './download';
import { FetchError } from './errors';
import { Progress } from './progress';
import { Deadline } from './retry';
import { listObjects, S3Access } from './s3-access';
import { escapeForLog, formatS3Uri } from './s3-location';
import { extractZip } from './unzip';

/** Objects of a prefix being worked on at once (their HEADs and GETs still share the semaphore). */
const PREFIX_OBJECTS_IN_PROGRESS = 64;

/** What this fetcher leaves in MODEL_DIR while it works: its staging directory and archive, and partial files. */
const OWN_TEMPORARY = /^(\.fetch-[0-9a-f]{12}(\.zip)?|\..+\.partial-[0-9a-f]{12})$/;

export interface FetchSummary {
  readonly files: number;
  readonly bytes: number;
  readonly verifiedBy: string;
}

/**
 * Puts the model named by `config.source` into `config.modelDir`: one object as
 * `<modelDir>/<basename>`, a prefix as the tree below it, a zip archive as its contents.
 * Multi-file models are assembled in a hidden staging directory, verified, and moved into place
 * only once every file is complete and right, so a failure (or `signal`) leaves `modelDir` as it was.
 */
export async function fetchModel(config: FetcherConfig, s3: S3Access, progress: Progress, signal: AbortSignal): Promise<FetchSummary> {
  const { modelDir } = config;
  await fs.mkdir(modelDir, { recursive: true });
  await removeStaleTemporaries(modelDir);
  const deadline = new Deadline(config.timeoutSeconds);
  try {
    return await fetchWithin(config, s3, {
      expectedSha256: config.sha256,
      partSize: config.partSize,
      requests: new Semaphore(config.concurrency),
      deadline,
      progress,
      // SIGTERM, or the deadline: whichever comes first stops everything in flight.
      signal: AbortSignal.any([signal, deadline.signal]),
    });
  } finally {
    deadline.clear();
  }
}

async function fetchWithin(config: FetcherConfig, s3: S3Access, options: DownloadOptions): Promise<FetchSummary> {
  const { source, modelDir } = config;

  if (!source.isPrefix && !config.unpack) {
    const dest = path.join(modelDir, path.posix.basename(source.key));
    const { bytes, verifiedBy } = await downloadObject(s3, source.bucket, source.key, dest, options);
    return { files: 1, bytes, verifiedBy };
  }

  const id = randomBytes(6).toString('hex');
  const staging = path.join(modelDir, `.fetch-${id}`);
  // An archive lies beside the directory it is unpacked into, never among the model's files.
  const archive = path.join(modelDir, `.fetch-${id}.zip`);
  await fs.mkdir(staging);
  try {
    let summary = source.isPrefix
      ? await downloadPrefix(s3, source.bucket, source.key, staging, options, config)
      : await downloadArchive(s3, source.bucket, source.key, archive, staging, options, config.maxFiles);
    if (config.manifest) {
      await verifyManifest(staging, config.manifest, formatS3Uri(source.bucket, source.key));
      summary = { ...summary, verifiedBy: `MODEL_MANIFEST (the SHA-256 of each of ${config.manifest.size} files)` };
    }
    await moveEntries(staging, modelDir);
    return summary;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
    await fs.rm(archive, { force: true });
  }
}

/** Removes what a fetcher killed mid-download (SIGKILL: no clean-up) left in MODEL_DIR. */
async function removeStaleTemporaries(modelDir: string): Promise<void> {
  for (const name of await fs.readdir(modelDir)) {
    if (OWN_TEMPORARY.test(name)) await fs.rm(path.join(modelDir, name), { recursive: true, force: true });
  }
}

async function downloadArchive(
  s3: S3Access, bucket: string, key: string, archive: string, staging: string, options: DownloadOptions, maxFiles: number,
): Promise<FetchSummary> {
  const { bytes, verifiedBy } = await downloadObject(s3, bucket, key, archive, options);
  const files = await extractZip(archive, staging, { maxEntries: maxFiles, deadline: options.deadline, signal: options.signal })
    .catch((err: Error) => {
      throw err instanceof FetchError ? new FetchError(`${formatS3Uri(bucket, key)}: ${err.message}`, err.exitCode) : err;
    });
  await fs.rm(archive);
  if (files === 0) throw new FetchError(`${formatS3Uri(bucket, key)}: the model archive is empty`);
  return { files, bytes, verifiedBy: `${verifiedBy} of the archive` };
}

async function downloadPrefix(
  s3: S3Access, bucket: string, prefix: string, staging: string, options: DownloadOptions, config: FetcherConfig,
): Promise<FetchSummary> {
  const objects = await listObjects(s3, bucket, prefix, config.maxFiles, options.deadline, options.signal);
  if (objects.length === 0) throw new FetchError(`${formatS3Uri(bucket, prefix)}: no objects under this prefix`);

  let bytes = 0;
  let checksummed = 0;
  // Objects start in parallel; the shared semaphore bounds the GETs actually in flight.
  const objectOptions = { ...options, expectedSha256: undefined, staged: true };
  const files = objects.map((listed) => ({ key: listed.key, listed, dest: path.join(staging, relativeModelPath(bucket, prefix, listed.key)) }));
  for (const dir of new Set(files.map(({ dest }) => path.dirname(dest)))) await fs.mkdir(dir, { recursive: true });
  await runPool(files, PREFIX_OBJECTS_IN_PROGRESS, async ({ key, listed, dest }) => {
    // An object with a full-object SHA-256 gets a HEAD that asks for it, and is checked against it
    // (unless a pinned manifest checks every file anyway); others go by the listing's size and ETag.
    const useChecksum = listed.hasSha256 && !config.manifest;
    const result = await downloadObject(s3, bucket, key, dest, objectOptions, useChecksum ? undefined : listed).catch((err: unknown) => {
      throw err instanceof FetchError || options.signal.aborted ? err : new ObjectError(bucket, key, err);
    });
    bytes += result.bytes;
    if (useChecksum) checksummed += 1;
  });
  const verifiedBy = checksummed === objects.length ? "S3's full-object SHA-256 of each object"
    : checksummed > 0 ? `S3's full-object SHA-256 of ${checksummed} objects, the size of the other ${objects.length - checksummed}`
      : 'size of each object';
  return { files: objects.length, bytes, verifiedBy };
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

/**
 * Checks the assembled model against MODEL_MANIFEST: exactly the files it names (paths with `/`),
 * each with its SHA-256. A mismatch is an error, never a model.
 */
async function verifyManifest(dir: string, manifest: ReadonlyMap<string, string>, uri: string): Promise<void> {
  const found = filesBelow(dir);
  const missing = [...manifest.keys()].filter((f) => !found.includes(f)).sort();
  if (missing.length > 0) throw new FetchError(`${uri}: MODEL_MANIFEST names '${escapeForLog(missing[0])}', which the model does not have${missing.length > 1 ? ` (nor ${missing.length - 1} more)` : ''}`);
  const extra = found.filter((f) => !manifest.has(f));
  if (extra.length > 0) throw new FetchError(`${uri}: the model has '${escapeForLog(extra[0])}', which MODEL_MANIFEST does not name${extra.length > 1 ? ` (nor ${extra.length - 1} more)` : ''}`);
  for (const file of found) {
    const hash = createHash('sha256');
    await pipeline(createReadStream(path.join(dir, file), { highWaterMark: 1 << 20 }), hash);
    const actual = hash.digest('hex');
    if (actual !== manifest.get(file)) {
      throw new FetchError(`${uri}: '${escapeForLog(file)}' has SHA-256 ${actual}, but MODEL_MANIFEST says ${manifest.get(file)}`);
    }
  }
}

/** Wraps an error with the object it happened on, so the one-line message names it. */
export class ObjectError extends Error {
  constructor(readonly bucket: string, readonly key: string, readonly cause: unknown) {
    super(formatS3Uri(bucket, key));
    this.name = 'ObjectError';
  }
}

async function moveEntries(from: string, to: string): Promise<void> {
  for (const name of await fs.readdir(from)) {
    const target = path.join(to, name);
    await fs.rm(target, { recursive: true, force: true });
    await fs.rename(path.join(from, name), target);
  }
}
