import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * A stub of AWS API actions that speak AWS's query protocol (form-encoded `Action=...` bodies,
 * XML answers) on 127.0.0.1, for the Lambda functions' tests: it records every call and answers
 * it with `answer`. A subclass may take other requests first with `takeOther`.
 */
export abstract class EmulatedQueryApi {
  readonly calls: Array<{ action: string; params: URLSearchParams }> = [];
  url = '';
  private server?: http.Server;

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (this.takeOther(req, body, res)) return;
        const params = new URLSearchParams(body);
        const action = params.get('Action')!;
        this.calls.push({ action, params });
        const [status, xml] = this.answer(action, params);
        res.writeHead(status, { 'content-type': 'text/xml' }).end(xml);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** What a Lambda needs to reach this stub instead of AWS. */
  abstract env(): Record<string, string>;

  /** The status and XML body that answer one action. */
  protected abstract answer(action: string, params: URLSearchParams): [number, string];

  /** Answers a request that is not an API call, and says so; by default there are none. */
  protected takeOther(_req: http.IncomingMessage, _body: string, _res: http.ServerResponse): boolean {
    return false;
  }
}
