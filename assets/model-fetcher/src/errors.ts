/**
 * A failure the fetcher explains in one line. `exitCode` 2 means the configuration is wrong,
 * 1 means the download or its verification failed, 128 + n that signal n stopped it.
 */
export class FetchError extends Error {
  constructor(message: string, readonly exitCode: number = 1, readonly retryable = false) {
    super(message);
    this.name = 'FetchError';
  }
}

/**
 * An error answer from S3 to a GET the fetcher sent itself, shaped like the AWS SDK's service
 * errors (`name` is S3's error code, `$metadata.httpStatusCode` the status), so retries and
 * messages treat both alike. `bucketRegion` is S3's `x-amz-bucket-region` header: the bucket
 * lives in another region than the request was signed for.
 */
export class S3ResponseError extends Error {
  readonly $metadata: { readonly httpStatusCode: number };

  constructor(status: number, code: string | undefined, message: string | undefined, readonly bucketRegion?: string) {
    super(message || `HTTP ${status}`);
    this.name = code || `HTTP${status}`;
    this.$metadata = { httpStatusCode: status };
  }
}

/** Turns an AWS SDK or network error into a short, specific cause. */
export function describeCause(err: unknown): string {
  if (err instanceof FetchError) return err.message;
  const e = err as { name?: string; Code?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.Code ?? e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode;
  switch (name) {
    case 'NoSuchKey':
    case 'NotFound':
      return 'NoSuchKey: the object does not exist';
    case 'NoSuchBucket':
      return 'NoSuchBucket: the bucket does not exist';
    case 'AccessDenied':
    case 'Forbidden':
      return 'AccessDenied: the task role may not read this object (check its s3:GetObject/s3:ListBucket grants and any KMS key)';
    case 'CredentialsProviderError':
      return 'no AWS credentials: the task has no role, or the credentials endpoint is unreachable';
    case 'PreconditionFailed':
      return 'PreconditionFailed: the object changed while it was being downloaded';
  }
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND' || e?.code === 'ETIMEDOUT' || e?.code === 'ECONNRESET') {
    return `network error ${e.code}: ${e.message ?? ''}`.trim();
  }
  if (status === 404) return 'not found (HTTP 404)';
  if (status === 403) return 'access denied (HTTP 403)';
  const message = (e?.message ?? String(err)).split('\n')[0];
  return name && !message.startsWith(name) ? `${name}: ${message}` : message;
}
