/** An S3 location named by `s3://bucket/key` (an object) or `s3://bucket/prefix/` (a prefix). */
export interface S3Uri {
  readonly bucketName: string;
  /** The object key, or the prefix (ending in `/`). */
  readonly key: string;
}

const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/;

/** Parses an S3 URI; returns the reason it is malformed as a string instead of throwing. */
export function parseS3Uri(uri: string): S3Uri | string {
  const match = S3_URI.exec(uri);
  if (!match) {
    return `expected s3://bucket/key or s3://bucket/prefix/ (a bucket name of 3-63 lowercase letters, digits, '.' or '-', then a key), got '${uri}'`;
  }
  return { bucketName: match[1], key: match[2] };
}
