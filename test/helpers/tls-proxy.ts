import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

/**
 * A TLS terminator on 127.0.0.1 in front of a plain-HTTP server (the S3 stand-in), with a
 * throwaway self-signed certificate for IP 127.0.0.1 made by openssl. `caFile` is that
 * certificate, for NODE_EXTRA_CA_CERTS.
 */
export class TlsProxy {
  static async start(target: string): Promise<TlsProxy> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tls-proxy-'));
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe', timeout: 30_000 });
    } catch (err) {
      throw new Error(`openssl could not make a test certificate (apt-get install -y openssl): ${(err as Error).message}`, { cause: err });
    }
    const upstream = new URL(target);
    let proxy: TlsProxy;
    const server = tls.createServer({ key: await fs.readFile(key), cert: await fs.readFile(cert) }, (client) => {
      const backend = net.connect(Number(upstream.port), upstream.hostname);
      for (const socket of [client, backend]) {
        proxy.sockets.add(socket);
        socket.on('close', () => proxy.sockets.delete(socket));
        socket.on('error', () => (socket === client ? backend : client).destroy());
      }
      client.pipe(backend).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TlsProxy(server, `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`, cert, dir);
    return proxy;
  }

  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: tls.Server, readonly endpoint: string, readonly caFile: string, private readonly dir: string) {}

  async stop(): Promise<void> {
    this.sockets.forEach((s) => s.destroy());
    await new Promise((r) => this.server.close(r));
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
