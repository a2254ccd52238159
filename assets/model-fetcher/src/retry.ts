import { describeCause, FetchError } from './errors';

/** Network failures worth another try: the connection, not the request, went wrong. */
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const RETRYABLE_NAMES = new Set(['SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeoutException', 'TimeoutError', 'ThrottlingException']);

/** Whether an error is transient: 5xx and throttling answers, resets, bodies cut off mid-stream. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof FetchError) return err.retryable;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; message?: string };
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (e?.name && RETRYABLE_NAMES.has(e.name)) return true;
  if (e?.code && RETRYABLE_CODES.has(e.code)) return true;
  return /socket hang up|aborted|premature close/i.test(e?.message ?? '');
}

/**
 * When the whole download must be done by (MODEL_FETCH_TIMEOUT_SECONDS), listing, every byte
 * range and every retry included. Its signal aborts whatever is in flight when the time is up,
 * so a download that is slow but never fails ends then too, with one line.
 */
export class Deadline {
  /** Aborted, with a FetchError that names the setting, when the time is up. */
  public readonly signal: AbortSignal;
  private readonly at: number;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly seconds: number) {
    this.at = Date.now() + seconds * 1000;
    const expire = new AbortController();
    this.signal = expire.signal;
    this.timer = setTimeout(() => expire.abort(new FetchError(
      `the model did not arrive within ${seconds} s (MODEL_FETCH_TIMEOUT_SECONDS); nothing was left in MODEL_DIR`)), seconds * 1000);
    this.timer.unref();
  }

  get remainingMs(): number {
    return this.at - Date.now();
  }

  /** Stops the timer once the download is over. */
  public clear(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Runs `attempt` until it succeeds, a non-retryable error occurs, or the deadline passes,
 * backing off exponentially (with jitter) between tries. `attempt` gets the try number.
 */
export async function withRetries<T>(what: string, deadline: Deadline, attempt: (n: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (!isRetryable(err)) throw err;
      const backoff = Math.min(2000, 50 * 2 ** Math.min(n, 10)) * (0.5 + Math.random() / 2);
      if (deadline.remainingMs < backoff) {
        throw new FetchError(`${what}: gave up after ${n} attempt(s) in ${deadline.seconds} s (MODEL_FETCH_TIMEOUT_SECONDS); last error: ${describeCause(err)}`);
      }
      await new Promise((r) => setTimeout(r, backoff));
    }
  }
}
