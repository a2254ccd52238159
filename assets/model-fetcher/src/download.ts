import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FetchError } from './errors';
import { Progress } from './progress';
import { Deadline, Semaphore, withRetries } from './retry';
import { formatS3Uri } from './s3-location';

/** Body chunks are written to disk in batches of about this size. */
const WRITE_BATCH_BYTES = 1 << 20;

export interface DownloadOptions {
  /** SHA-256 (hex) the object must have. */
  readonly expectedSha256?: string;
  /** Objects larger than this are fetched as parallel byte ranges of this size. */
  readonly partSize: number;
  /** Shared bound on GET requests in flight. */
  readonly requests: Semaphore;
  readonly deadline: Deadline;
  readonly progress: Progress;
}

/** What a listing says of an object. */
export interface ListedObject {
  readonly size: number;
  readonly etag?: string;
}

export interface DownloadedObject {
  readonly bytes: number;
  /** How the content was verified, for the summary line. */
  readonly verifiedBy: string;
}

/**
 * Downloads one object to `destFile`: HEAD for its size and ETag, then byte ranges fetched in
 * parallel (each with If-Match on that ETag, so an object overwritten mid-download is an error,
 * never a mix of two versions) and written at their offsets into a preallocated hidden temporary
 * file. A range whose body is cut off, or that meets a 5xx or a reset, is fetched again from
 * where it stopped. The file is verified (MODEL_SHA256, else S3's full-object SHA-256 when it
 * has one, else the exact length of every range) and only then renamed into place; a failure
 * never leaves anything at `destFile` or beside it.
 */
export async function downloadObject(
  client: S3Client, bucket: string, key: string, destFile: string, options: DownloadOptions, listed?: ListedObject,
): Promise<DownloadedObject> {
  const uri = formatS3Uri(bucket, key);
  // A listing already gave size and ETag: no HEAD (half the requests for a prefix of small files).
  const head = listed ? { ContentLength: listed.size, ETag: listed.etag, ChecksumSHA256: undefined, ChecksumType: undefined } : await withRetries(`${uri}: HEAD`, options.deadline, () =>
    client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' })))
    .catch(async (err) => {
      // A HEAD's 404 has no body to say whether the key or the bucket is missing: ask.
      if (err?.$metadata?.httpStatusCode === 404 && !(await bucketExists(client, bucket))) {
        throw new FetchError(`${uri}: NoSuchBucket: the bucket does not exist`);
      }
      throw err;
    });
  const size = head.ContentLength ?? 0;
  const etag = head.ETag;

  const dir = path.dirname(destFile);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(destFile)}.partial-${randomBytes(6).toString('hex')}`);
  const file = await fs.open(tmp, 'wx', 0o644);
  try {
    await file.truncate(size);
    const ranges: Array<[number, number]> = [];
    for (let start = 0; start < size; start += options.partSize) ranges.push([start, Math.min(size, start + options.partSize) - 1]);
    options.progress.expect(size);
    // The first failure cancels the other ranges; all of them settle before the file is closed.
    const abort = new AbortController();
    setMaxListeners(0, abort.signal); // one listener per range in flight, by design
    let failure: unknown;
    await Promise.all(ranges.map(([start, end]) =>
      options.requests.use(() => (abort.signal.aborted ? Promise.resolve()
        : fetchRange(client, bucket, key, etag, file, start, end, options, abort.signal)))
        .catch((err) => {
          if (failure === undefined) failure = err;
          abort.abort();
        })));
    if (failure !== undefined) throw failure;
    await file.sync();
    await file.close();

    const verifiedBy = await verify(uri, tmp, size, options.expectedSha256, head.ChecksumSHA256, head.ChecksumType);
    await fs.rename(tmp, destFile);
    return { bytes: size, verifiedBy };
  } catch (err) {
    await file.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err: any) {
    return err?.$metadata?.httpStatusCode !== 404;
  }
}

/** Fetches bytes [start, end] into the file at their offsets, resuming after partial bodies. */
async function fetchRange(
  client: S3Client, bucket: string, key: string, etag: string | undefined, file: fs.FileHandle,
  start: number, end: number, options: DownloadOptions, signal: AbortSignal,
): Promise<void> {
  let position = start;
  await withRetries(`${formatS3Uri(bucket, key)}: bytes ${start}-${end}`, options.deadline, async () => {
    if (signal.aborted) throw new FetchError('cancelled: another range failed');
    const response = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${position}-${end}`, IfMatch: etag }), { abortSignal: signal });
    // Positional writes through the shared handle: nothing here can close the file under the
    // other ranges (a destroyed fs.WriteStream closes its descriptor, whatever autoClose says).
    // Chunks are gathered into ~1 MiB vectored writes: fewer system calls and awaits per GiB.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      let buffers = pending;
      let remaining = pendingBytes;
      pending = [];
      pendingBytes = 0;
      while (remaining > 0) {
        const { bytesWritten } = await file.writev(buffers, position);
        position += bytesWritten;
        remaining -= bytesWritten;
        options.progress.add(bytesWritten);
        if (remaining > 0) buffers = [Buffer.concat(buffers).subarray(bytesWritten)];
      }
    };
    try {
      for await (const chunk of response.Body as AsyncIterable<Uint8Array>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BATCH_BYTES) await flush();
      }
    } finally {
      // Whatever arrived before an error is kept: a retry resumes after it.
      await flush();
    }
    if (position <= end) {
      // The body ended early without an error: fetch the rest.
      throw new FetchError(`body ended after ${position - start} of ${end - start + 1} bytes`, 1, true);
    }
  });
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
