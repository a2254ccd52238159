import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FetchError } from './errors';
import { formatS3Uri } from './s3-location';

export interface DownloadedObject {
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * Downloads one object to `destFile`. The bytes go to a hidden temporary file beside it, are
 * counted and hashed on the way, and only a complete, verified file is renamed into place: a
 * failure never leaves anything at `destFile` or beside it.
 */
export async function downloadObject(
  client: S3Client,
  bucket: string,
  key: string,
  destFile: string,
  expectedSha256?: string,
): Promise<DownloadedObject> {
  const dir = path.dirname(destFile);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(destFile)}.partial-${randomBytes(6).toString('hex')}`);
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!response.Body) throw new FetchError(`${formatS3Uri(bucket, key)}: S3 returned no body`);
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
    await pipeline(response.Body as NodeJS.ReadableStream, meter, out);

    if (response.ContentLength !== undefined && bytes !== response.ContentLength) {
      throw new FetchError(`${formatS3Uri(bucket, key)}: body ended after ${bytes} of ${response.ContentLength} bytes`);
    }
    const sha256 = hash.digest('hex');
    if (expectedSha256 && sha256 !== expectedSha256) {
      throw new FetchError(`${formatS3Uri(bucket, key)}: SHA-256 mismatch, expected ${expectedSha256} but got ${sha256}`);
    }
    await fsync(tmp);
    await fs.rename(tmp, destFile);
    return { bytes, sha256 };
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

async function fsync(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
