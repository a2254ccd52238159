import { FetchError } from './errors';

/** Where the model lives: one object, or every object below a prefix. */
export interface S3Location {
  readonly bucket: string;
  /** The object key, or the prefix (ending in `/`) when `isPrefix`. */
  readonly key: string;
  readonly isPrefix: boolean;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses `s3://bucket/key` or `s3://bucket/prefix/`. A key with a `.`, `..` or empty path segment
 * is refused: S3 would HEAD and GET the key as written, while a file path made from it would
 * resolve elsewhere (`s3://b/x/..` once put its temporary file above MODEL_DIR).
 */
export function parseS3Uri(uri: string): S3Location {
  // A key may hold any character, a newline among them.
  const match = /^s3:\/\/([^/]+)\/(.+)$/s.exec(uri);
  if (!match) {
    throw new FetchError(`MODEL_URI must look like s3://bucket/key or s3://bucket/prefix/, got '${escapeForLog(uri)}'`, 2);
  }
  const [, bucket, key] = match;
  if (!BUCKET_NAME.test(bucket)) {
    throw new FetchError(`MODEL_URI names an invalid bucket '${escapeForLog(bucket)}'`, 2);
  }
  const isPrefix = key.endsWith('/');
  const segments = (isPrefix ? key.slice(0, -1) : key).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new FetchError(`MODEL_URI's key '${escapeForLog(key)}' has an empty, '.' or '..' path segment: name the object or prefix exactly`, 2);
  }
  return { bucket, key, isPrefix };
}

/** `s3://bucket/key` for log lines, with control characters escaped. */
export function formatS3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${escapeForLog(key)}`;
}

/**
 * Control characters as escapes (`\n`, `\u001b`): a key is the object's owner's text, and one
 * with a newline in it must not forge a second line in the fetcher's output.
 */
export function escapeForLog(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is escaped
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]/g, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
