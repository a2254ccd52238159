import * as http from 'node:http';
import * as https from 'node:https';
import { HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { FetchError } from './errors';
import { HttpPool } from './http-pool';
import { Deadline, withRetries } from './retry';
import { formatS3Uri } from './s3-location';
import { UrlSigner } from './url-signer';

const CONNECT_TIMEOUT_MS = 5000;
/** A connection that delivers nothing for this long is dropped, and the request retried. */
const IDLE_TIMEOUT_MS = 30000;

/** How the fetcher talks to S3. */
export interface S3Access {
  /** The AWS SDK client: HEAD, LIST. */
  readonly client: S3Client;
  /** Presigned URLs for the GETs. */
  readonly signer: UrlSigner;
  /** The fetcher's own HTTP client for the GETs: object bytes go from socket to file with no copy in between. */
  readonly http: HttpPool;
}

/** What a listing or a HEAD says of an object. */
export interface ObjectInfo {
  readonly size: number;
  readonly etag?: string;
  /** S3's SHA-256 of the object (base64), when it has one. */
  readonly sha256?: string;
  /** `FULL_OBJECT` or `COMPOSITE` (a multipart upload's checksum of checksums). */
  readonly checksumType?: string;
}

/** A listed object, and whether S3 keeps a full-object SHA-256 for it. */
export interface ListedObject extends ObjectInfo {
  readonly key: string;
  readonly hasSha256: boolean;
}

/** The S3 clients for a download: against `endpoint` when given (a local S3 server), else AWS. */
export function createS3Access(endpoint?: string): S3Access {
  const client = s3Client(endpoint);
  return {
    client,
    signer: new UrlSigner(client, (region) => s3Client(endpoint, region)),
    http: new HttpPool({ connectTimeoutMs: CONNECT_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS }),
  };
}

/** The AWS SDK client for HEAD and LIST, in `region` when given. */
function s3Client(endpoint?: string, region?: string): S3Client {
  const options: S3ClientConfig = {
    // A bucket in another region than the task answers with a redirect; follow it.
    followRegionRedirects: true,
    // Retries are the fetcher's own (per byte range, within MODEL_FETCH_TIMEOUT_SECONDS).
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true }),
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: IDLE_TIMEOUT_MS,
    }),
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(region ? { region } : {}),
  };
  return new S3Client(options);
}

/** An object's size, ETag and checksum (HEAD, retried); a missing bucket is told from a missing key. */
export async function headObject(s3: S3Access, bucket: string, key: string, deadline: Deadline, signal: AbortSignal): Promise<ObjectInfo> {
  const head = await withRetries(`${formatS3Uri(bucket, key)}: HEAD`, deadline, () =>
    s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }), { abortSignal: signal }), signal)
    .catch(async (err) => {
      // A HEAD's 404 has no body to say whether the key or the bucket is missing: ask.
      if (err?.$metadata?.httpStatusCode === 404 && !(await bucketExists(s3.client, bucket))) {
        throw new FetchError(`${formatS3Uri(bucket, key)}: NoSuchBucket: the bucket does not exist`);
      }
      throw err;
    });
  return { size: head.ContentLength ?? 0, etag: head.ETag, sha256: head.ChecksumSHA256, checksumType: head.ChecksumType };
}

async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err: any) {
    return err?.$metadata?.httpStatusCode !== 404;
  }
}

/** Every object below `prefix`, following continuation tokens; folder markers are skipped. */
export async function listObjects(
  s3: S3Access, bucket: string, prefix: string, maxFiles: number, deadline: Deadline, signal: AbortSignal,
): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await withRetries(`${formatS3Uri(bucket, prefix)}: list`, deadline, () =>
      s3.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal }), signal);
    for (const object of page.Contents ?? []) {
      if (!object.Key || object.Key.endsWith('/')) continue;
      // S3 lists only keys below the prefix; anything else is a listing not to be trusted.
      if (!object.Key.startsWith(prefix)) {
        throw new FetchError(`${formatS3Uri(bucket, prefix)}: the listing returned ${formatS3Uri(bucket, object.Key)}, which is not below the prefix`);
      }
      objects.push({
        key: object.Key,
        size: object.Size ?? 0,
        etag: object.ETag,
        hasSha256: (object.ChecksumAlgorithm ?? []).includes('SHA256') && (object.ChecksumType ?? 'FULL_OBJECT') === 'FULL_OBJECT',
      });
      if (objects.length > maxFiles) {
        throw new FetchError(`${formatS3Uri(bucket, prefix)}: more than ${maxFiles} objects below the prefix (MODEL_MAX_FILES)`);
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}
