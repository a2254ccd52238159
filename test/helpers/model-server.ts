import { MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { Background, freePort, SYSTEM_PYTHON } from '../../scripts/processes';
import { waitForHttp } from '../../scripts/wait-for-http';

export interface HttpResult {
  readonly status: number;
  readonly body: any;
  readonly contentType: string | null;
}

/** One HTTP request to 127.0.0.1, bounded in time; the body is parsed as JSON when it is JSON. */
export async function http(url: string, init: RequestInit = {}): Promise<HttpResult> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  return { status: response.status, body: contentType?.includes('json') ? JSON.parse(text) : text, contentType };
}

/** POSTs a JSON body with chunked transfer encoding: the server learns its size only by reading it. */
export function postChunked(url: string, json: string): Promise<HttpResult> {
  const chunk = new TextEncoder().encode(json);
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(chunk);
      controller.close();
    },
  });
  return http(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
}

/** The model server as a real gunicorn process on 127.0.0.1, under Debian's Python (or `python`). */
export class ModelServerProcess {
  static async start(env: Record<string, string>, python: string = SYSTEM_PYTHON): Promise<ModelServerProcess> {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const proc = Background.start(python, ['-m', 'model_server'], {
      cwd: MODEL_SERVER_DIR,
      env: { PATH: process.env.PATH!, HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: String(metricsPort), WORKERS: '1', ...env },
    });
    return new ModelServerProcess(proc, `http://127.0.0.1:${port}`, `http://127.0.0.1:${metricsPort}`);
  }

  /** `url` serves the API; `metricsUrl` is the metrics port (GET /metrics). */
  private constructor(readonly process: Background, readonly url: string, readonly metricsUrl: string) {}

  /** Polls the health route until it answers `status` (bounded); fails with the server's output otherwise. */
  async waitForHealth(status = 200, timeoutMs = 20_000, healthPath = '/health'): Promise<HttpResult> {
    const text = await waitForHttp(`${this.url}${healthPath}`, {
      status, timeoutMs, intervalMs: 100,
      alive: () => this.process.exitCode === undefined,
      describe: () => `server output:\n${this.process.output}`,
    });
    return { status, body: JSON.parse(text), contentType: 'application/json' };
  }

  predict(body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<HttpResult> {
    return http(`${this.url}/predict`, {
      method: 'POST',
      headers,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  stop(): Promise<void> {
    return this.process.stop();
  }
}
