import * as http from 'node:http';
import { AddressInfo } from 'node:net';

export interface Rewrites {
  /** Rewrites a ListObjectsV2 answer's XML (to add entries, or fields s3rver does not write). */
  readonly listing?: (xml: string) => string;
  /** Headers added to a HEAD answer for `key` when the request asks for checksums (x-amz-checksum-mode). */
  readonly headHeaders?: (key: string) => Record<string, string> | undefined;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of the S3 server that rewrites what S3 answers: it stands in
 * for what s3rver cannot do (full-object checksums) and for a listing that cannot be trusted.
 */
export class S3RewriteProxy {
  static async start(target: string, rewrites: Rewrites): Promise<S3RewriteProxy> {
    const upstream = new URL(target);
    const server = http.createServer((req, res) => {
      const target = { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers };
      const forward = http.request(target, (up) => {
        const isList = req.method === 'GET' && req.url!.includes('list-type=2');
        if (isList && rewrites.listing) {
          const chunks: Buffer[] = [];
          up.on('data', (c) => chunks.push(c));
          up.on('end', () => {
            const body = Buffer.from(rewrites.listing!(Buffer.concat(chunks).toString('utf8')));
            res.writeHead(up.statusCode!, { ...up.headers, 'content-length': String(body.length) });
            res.end(body);
          });
          return;
        }
        const key = decodeURIComponent(req.url!.split('?')[0].split('/').slice(2).join('/'));
        const extra = req.method === 'HEAD' && req.headers['x-amz-checksum-mode'] ? rewrites.headHeaders?.(key) : undefined;
        res.writeHead(up.statusCode!, { ...up.headers, ...extra });
        up.pipe(res);
      });
      forward.on('error', () => res.socket?.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new S3RewriteProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  private constructor(private readonly server: http.Server, readonly endpoint: string) {}

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
