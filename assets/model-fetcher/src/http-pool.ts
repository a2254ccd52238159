import { BlockPool, FileRange } from './file-range';
import { ConnectionOptions, HttpConnection, RangeGet } from './http-connection';

/**
 * Keep-alive connections per origin, shared by every range and object of a download. The
 * number open follows the requests in flight, which the caller bounds. A request sent on a
 * kept-alive connection that the server had already closed is sent again on a new one.
 */
export class HttpPool {
  private readonly idle = new Map<string, Set<HttpConnection>>();
  private readonly blocks = new BlockPool();

  constructor(private readonly options: ConnectionOptions) {}

  /** GETs the rest of `range` (see HttpConnection.get). */
  async get(request: RangeGet, range: FileRange, signal: AbortSignal): Promise<void> {
    const origin = request.url.origin;
    for (;;) {
      const kept = this.takeIdle(origin);
      const connection = kept ?? await HttpConnection.open(request.url, this.blocks, this.options);
      try {
        await connection.get(request, range, signal);
      } catch (err) {
        // A kept-alive socket that died before answering: the request never reached the server.
        if (kept && !connection.answered && !signal.aborted && !range.writeError) continue;
        throw err;
      }
      this.putIdle(origin, connection);
      return;
    }
  }

  /** Closes every idle connection. */
  close(): void {
    for (const connections of this.idle.values()) connections.forEach((c) => c.destroy());
    this.idle.clear();
  }

  private takeIdle(origin: string): HttpConnection | undefined {
    const connections = this.idle.get(origin);
    for (const connection of connections ?? []) {
      connections!.delete(connection);
      if (connection.reusable) return connection;
    }
    return undefined;
  }

  private putIdle(origin: string, connection: HttpConnection): void {
    if (!connection.reusable) {
      connection.destroy();
      return;
    }
    let connections = this.idle.get(origin);
    if (!connections) this.idle.set(origin, (connections = new Set()));
    connections.add(connection);
    connection.park();
    connection.onClose(() => connections!.delete(connection));
  }
}
