import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/** The region `wrong-region` names as the bucket's. */
export const BUCKET_REGION = 'eu-west-1';

export type Fault = 'pass' | 'slowdown' | 'cut' | 'wrong-region' | 'stall' | 'trickle';

/**
 * An HTTP proxy on 127.0.0.1 in front of the S3 server that injects faults into object GETs:
 * `slowdown` answers 503 SlowDown as S3 does under load; `cut` forwards the headers and half the
 * body, then drops the connection; `wrong-region` answers 301 PermanentRedirect naming the
 * bucket's region, as S3 does for a request signed for another region; `stall` forwards the headers and
 * the first bytes, then sends nothing more; `trickle` forwards the body at 1 KiB a second (for at most a minute),
a download that is slow but never fails. It also applies S3's If-Match rule, which s3rver lacks: a GET
 * whose If-Match differs from the object's current ETag gets 412 PreconditionFailed.
 */
export class FaultProxy {
  static async start(target: string, plan: (getNumber: number, req: http.IncomingMessage) => Fault | Promise<Fault>): Promise<FaultProxy> {
    const upstream = new URL(target);
    let proxy: FaultProxy;
    const server = http.createServer(async (req, res) => {
      const isObjectGet = req.method === 'GET' && !req.url!.includes('list-type') && req.url!.split('?')[0].split('/').length > 2;
      const fault = isObjectGet ? await plan(++proxy.gets, req) : 'pass';
      proxy.injected[fault]++;
      if (fault === 'slowdown') {
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
        return;
      }
      if (fault === 'wrong-region') {
        res.writeHead(301, { 'content-type': 'application/xml', 'x-amz-bucket-region': BUCKET_REGION });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>');
        return;
      }
      const target = { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers };
      const forward = http.request(target, (up) => {
        const ifMatch = req.headers['if-match'];
        if (isObjectGet && ifMatch && up.headers.etag && ifMatch !== up.headers.etag && up.statusCode! < 300) {
          up.resume();
          res.writeHead(412, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
          return;
        }
        res.writeHead(up.statusCode!, up.headers);
        if (fault === 'stall') {
          up.once('data', (chunk: Buffer) => {
            res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
            up.destroy();
          });
          return;
        }
        if (fault === 'trickle') {
          up.pause();
          let ticks = 0;
          const tick = setInterval(() => {
            const chunk = up.read(1024) as Buffer | null;
            if (chunk) res.write(chunk);
            if (++ticks >= 60 || res.destroyed) {
              clearInterval(tick);
              up.destroy();
              res.socket?.destroy();
            }
          }, 1000);
          res.on('close', () => clearInterval(tick));
          return;
        }
        if (fault !== 'cut') {
          up.pipe(res);
          return;
        }
        const half = Math.floor(Number(up.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= half) return;
          const slice = chunk.subarray(0, half - sent);
          sent += slice.length;
          res.write(slice);
          if (sent >= half) {
            up.destroy();
            res.socket?.destroy();
          }
        });
      });
      forward.on('error', () => res.socket?.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new FaultProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  readonly injected: Record<Fault, number> = { pass: 0, slowdown: 0, cut: 0, 'wrong-region': 0, stall: 0, trickle: 0 };
  private gets = 0;

  private constructor(private readonly server: http.Server, readonly endpoint: string) {}

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
