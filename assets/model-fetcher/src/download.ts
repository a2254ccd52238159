import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Semaphore } from './concurrency';
import { FetchError, S3ResponseError } from './errors';
import { FileRange, FileWriter } from './file-range';
import { Progress } from './progress';
import { Deadline, withRetries } from './retry';
import { headObject, ObjectInfo, S3Access } from './s3-access';
import { formatS3Uri } from './s3-location';

export interface DownloadOptions {
  /** SHA-256 (hex) the object must have. */
  readonly expectedSha256?: string;
  /** Objects larger than this are fetched as parallel byte ranges of this size. */
  readonly partSize: number;
  /** Shared bound on GET requests in flight. */
  readonly requests: Semaphore;
  /**
   * The destination lies in a staging directory that the caller made and discards on failure:
   * write the file in place, without a temporary name.
   * @default false
   */
  readonly staged?: boolean;
  readonly deadline: Deadline;
  readonly progress: Progress;
  /** Aborts everything (SIGTERM): in-flight requests stop, and what was written is removed. */
  readonly signal: AbortSignal;
}

export interface DownloadedObject {
  readonly bytes: number;
  /** How the content was verified, for the summary line. */
  readonly verifiedBy: string;
}

/**
 * Downloads one object to `destFile`: HEAD for its size and ETag (unless a listing gave them),
 * then byte ranges fetched in parallel (each with If-Match on that ETag, so an object
 * overwritten mid-download is an error, never a mix of two versions) and written at their
 * offsets into a hidden temporary file (or in place, inside a staging directory). A range whose
 * body is cut off, or that meets a 5xx or a reset, is fetched again from where it stopped. The
 * file is verified (MODEL_SHA256, else S3's full-object SHA-256 when it has one, else the exact
 * length of every range) and only then renamed into place; a failure never leaves anything at
 * `destFile` or beside it.
 */
export async function downloadObject(
  s3: S3Access, bucket: string, key: string, destFile: string, options: DownloadOptions, listed?: ObjectInfo,
): Promise<DownloadedObject> {
  const uri = formatS3Uri(bucket, key);
  // A listing already gave size and ETag: no HEAD (half the requests for a prefix of small files).
  const head = listed ?? await headObject(s3, bucket, key, options.deadline, options.signal);
  const { size, etag } = head;

  // Inside a staging directory (made by the caller, discarded on failure) the file is written in
  // place; elsewhere under a hidden temporary name, renamed only once complete and verified.
  const target = options.staged ? destFile : path.join(path.dirname(destFile), `.${path.basename(destFile)}.partial-${randomBytes(6).toString('hex')}`);
  if (!options.staged) await fs.mkdir(path.dirname(destFile), { recursive: true });
  // Positional writes past the end extend the file: no preallocation needed.
  const file = await fs.open(target, 'wx', 0o644);
  try {
    const ranges: Array<[number, number]> = [];
    for (let start = 0; start < size; start += options.partSize) ranges.push([start, Math.min(size, start + options.partSize) - 1]);
    options.progress.expect(size);
    // The first failure cancels the other ranges, as does the fetcher's own abort (SIGTERM); all of
    // them settle before the file is closed.
    const abort = new AbortController();
    const cancelled = AbortSignal.any([abort.signal, options.signal]);
    setMaxListeners(0, abort.signal, cancelled); // one listener per range in flight, by design
    const url = s3.signer.urlFor(bucket, key);
    const writer = new FileWriter(file.fd);
    let failure: unknown;
    await Promise.all(ranges.map(([start, end]) =>
      options.requests.use(() => (cancelled.aborted ? Promise.resolve()
        : new RangeJob({ s3, bucket, key, url, etag }, new FileRange(writer, start, end, (bytes) => options.progress.add(bytes)))
          .run(options.deadline, cancelled)))
        .catch((err) => {
          if (failure === undefined) failure = err;
          abort.abort();
        })));
    if (options.signal.aborted) throw options.signal.reason;
    if (failure !== undefined) throw failure;
    // No fsync: the model volume lives and dies with the task, and every task start downloads
    // afresh, so durability across a host crash buys nothing; the rename below is what keeps a
    // partial file from ever carrying the model's name. (An fsync costs ~0.3 s per GiB here.)
    await file.close();

    const verifiedBy = await verify(uri, target, size, options.expectedSha256, head.sha256, head.checksumType);
    if (target !== destFile) await fs.rename(target, destFile);
    return { bytes: size, verifiedBy };
  } catch (err) {
    await file.close().catch(() => undefined);
    await fs.rm(target, { force: true });
    throw err;
  }
}

/** The object a range belongs to, and how to reach it. */
interface RangeSource {
  readonly s3: S3Access;
  readonly bucket: string;
  readonly key: string;
  /** A valid presigned GET URL for the object, signed again when due. */
  readonly url: () => Promise<URL>;
  /** Every range must come from this version of the object (If-Match). */
  readonly etag?: string;
}

/** One byte range of an object, fetched into its place in the file, resuming after partial bodies. */
class RangeJob {
  constructor(private readonly source: RangeSource, private readonly range: FileRange) {}

  async run(deadline: Deadline, signal: AbortSignal): Promise<void> {
    const { s3, bucket, key, url, etag } = this.source;
    await withRetries(`${formatS3Uri(bucket, key)}: bytes ${this.range.start}-${this.range.end}`, deadline, async () => {
      if (signal.aborted) throw new FetchError('cancelled: another part of the download failed');
      const signed = await url();
      try {
        // Whatever arrived before a failure is written: a retry asks only for the rest.
        await s3.http.get({ url: signed, etag }, this.range, signal);
      } catch (err) {
        // S3 named the bucket's region: sign for it and go again.
        if (s3.signer.followRegion(bucket, signed, err)) throw new FetchError(`the bucket is in ${(err as S3ResponseError).bucketRegion}`, 1, true);
        throw err;
      }
    }, signal);
  }
}

async function verify(uri: string, file: string, size: number, expectedSha256?: string, s3Sha256?: string, checksumType?: string): Promise<string> {
  const full = checksumType === undefined || checksumType === 'FULL_OBJECT';
  const expectedBase64 = expectedSha256 ? Buffer.from(expectedSha256, 'hex').toString('base64') : full ? s3Sha256 : undefined;
  if (!expectedBase64) return `size (${size} bytes, every range complete, one ETag throughout)`;
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  const actual = hash.digest();
  if (actual.toString('base64') !== expectedBase64) {
    const expectedHex = Buffer.from(expectedBase64, 'base64').toString('hex');
    throw new FetchError(`${uri}: SHA-256 mismatch, expected ${expectedHex} but got ${actual.toString('hex')}`);
  }
  return expectedSha256 ? 'MODEL_SHA256' : "S3's full-object SHA-256";
}
