import { FetchError } from './errors';

/** Where the model lives: one object, or every object below a prefix. */
export interface S3Location {
  readonly bucket: string;
  /** The object key, or the prefix (ending in `/`) when `isPrefix`. */
  readonly key: string;
  readonly isPrefix: boolean;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `s3://bucket/key` or `s3://bucket/prefix/`. */
export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) {
    throw new FetchError(`MODEL_URI must look like s3://bucket/key or s3://bucket/prefix/, got '${uri}'`, 2);
  }
  const [, bucket, key] = match;
  if (!BUCKET_NAME.test(bucket)) {
    throw new FetchError(`MODEL_URI names an invalid bucket '${bucket}'`, 2);
  }
  return { bucket, key, isPrefix: key.endsWith('/') };
}

export function formatS3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
