/** Options for waitForHttp. */
export interface WaitForHttpOptions {
  /** The status to wait for. @default 200 */
  readonly status?: number;
  /** @default 30_000 */
  readonly timeoutMs?: number;
  /** @default 200 */
  readonly intervalMs?: number;
  /** Checked between attempts: false stops the wait at once (the process or container has exited). */
  readonly alive?: () => boolean | Promise<boolean>;
  /** What the error adds about the server (its log), when the wait fails. */
  readonly describe?: () => string | Promise<string>;
}

/**
 * Polls `url` (GET, 2 s a request) until it answers `status`, within the timeout; returns that
 * response's text. Fails with the last answer or error, and what `describe` says. The one health
 * poller of the tests, the benchmarks and `npm run local`.
 */
export async function waitForHttp(url: string, options: WaitForHttpOptions = {}): Promise<string> {
  const status = options.status ?? 200;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: string;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const text = await response.text();
      if (response.status === status) return text;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = String((err as Error).cause ?? err);
    }
    const alive = options.alive ? await options.alive() : true;
    if (!alive || Date.now() >= deadline) {
      const why = alive ? `did not answer ${status} within ${options.timeoutMs ?? 30_000} ms` : 'stopped before it answered';
      throw new Error(`${url} ${why} (last: ${last})${options.describe ? `:\n${await options.describe()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
}
