import { FetchError } from './errors';

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

/** When the whole download must be done by; every retry checks it. */
export class Deadline {
  private readonly at: number;

  constructor(readonly seconds: number) {
    this.at = Date.now() + seconds * 1000;
  }

  get remainingMs(): number {
    return this.at - Date.now();
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
        throw new FetchError(`${what}: gave up after ${n} attempt(s) in ${deadline.seconds} s (MODEL_FETCH_TIMEOUT_SECONDS); last error: ${describe(err)}`);
      }
      await new Promise((r) => setTimeout(r, backoff));
    }
  }
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  return [e?.name, e?.code, status && `HTTP ${status}`, e?.message?.split('\n')[0]].filter(Boolean).join(' ');
}

/** Bounds how many requests are in flight across everything that shares it. */
export class Semaphore {
  private waiting: Array<() => void> = [];

  constructor(private available: number) {}

  async use<T>(body: () => Promise<T>): Promise<T> {
    if (this.available > 0) this.available--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await body();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.available++;
    }
  }
}
