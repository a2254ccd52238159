import * as net from 'node:net';
import * as tls from 'node:tls';
import { FetchError, S3ResponseError } from './errors';
import { BlockPool, FileRange } from './file-range';

/** Longest response head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** An error answer's body is read up to this, for S3's <Code> and <Message>. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

export interface ConnectionOptions {
  /** A connection not established within this fails (retryably). */
  readonly connectTimeoutMs: number;
  /** A request that receives nothing for this long fails (retryably). */
  readonly idleTimeoutMs: number;
}

/** A GET of the rest of a file range: a presigned URL, and the ETag the object must still have. */
export interface RangeGet {
  readonly url: URL;
  /** Sent as If-Match, and compared with the response's ETag (some S3 stand-ins ignore If-Match). */
  readonly etag?: string;
}

interface Exchange {
  readonly range: FileRange;
  /** First byte asked for. */
  readonly first: number;
  readonly etag?: string;
  phase: 'head' | 'body' | 'error-body';
  status: number;
  headers: Map<string, string>;
  /** Body bytes still to come (phase 'body'). */
  bodyLeft: number;
  /** Where the error body starts in the block (phase 'error-body'). */
  errorBodyStart: number;
  settle(err?: unknown): void;
}

/**
 * One keep-alive HTTP/1.1 connection (TCP or TLS) that GETs byte ranges straight into a file.
 * Socket reads land in pooled blocks (`onread`), each full block becomes one positional write:
 * no per-chunk buffers, streams or copies in JavaScript, which is where Node's own HTTP client
 * spends its CPU on large bodies. The head is parsed here; bodies must carry Content-Length and,
 * for a 206, the Content-Range asked for. Error answers become S3ResponseError with S3's code.
 * After any failure the connection is closed, never reused.
 */
export class HttpConnection {
  /** Opens a connection to the URL's origin; fails retryably when it is not up within the connect timeout. */
  static open(url: URL, blocks: BlockPool, options: ConnectionOptions): Promise<HttpConnection> {
    const connection = new HttpConnection(url, blocks, options);
    const { socket } = connection;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(Object.assign(
        new Error(`no connection to ${url.host} within ${options.connectTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), options.connectTimeoutMs);
      const settle = (err?: Error) => {
        clearTimeout(timer);
        socket.off('error', settle);
        socket.off(url.protocol === 'https:' ? 'secureConnect' : 'connect', up);
        if (err) reject(err);
      };
      const up = () => {
        settle();
        socket.setTimeout(options.idleTimeoutMs, () => connection.onIdleTimeout());
        resolve(connection);
      };
      socket.once('error', settle);
      socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', up);
    });
  }

  /** Whether the current (or last) request received any byte. */
  answered = false;
  private block: Buffer;
  private filled = 0;
  private exchange?: Exchange;
  private keepAlive = true;
  private closed = false;
  private readonly socket: net.Socket;
  private closeListener?: () => void;
  /** Hands a block back to the pool once a write is done with it. */
  private readonly release: (block: Buffer) => void;

  private constructor(url: URL, private readonly blocks: BlockPool, private readonly options: ConnectionOptions) {
    this.release = (block) => this.blocks.give(block);
    this.block = blocks.take();
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const onread = { buffer: () => this.readTarget(), callback: (n: number) => this.onRead(n) };
    // TLSSocket honours `onread` as net.Socket does (it is one); @types/node lists it for net only.
    const tlsOptions: tls.ConnectionOptions & Pick<net.TcpNetConnectOpts, 'onread'> = {
      host: url.hostname, port, servername: net.isIP(url.hostname) ? undefined : url.hostname, ALPNProtocols: ['http/1.1'], onread,
    };
    this.socket = url.protocol === 'https:' ? tls.connect(tlsOptions) : net.connect({ host: url.hostname, port, onread });
    this.socket.setNoDelay(true);
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => {
      this.closed = true;
      this.fail(Object.assign(new Error('the connection closed'), { code: 'ECONNRESET' }));
      this.blocks.give(this.block);
      this.closeListener?.();
    });
  }

  /** Whether it can take another request. */
  get reusable(): boolean {
    return this.keepAlive && !this.closed && !this.exchange;
  }

  /** Called once the socket has closed (the server may close an idle keep-alive connection). */
  onClose(listener: () => void): void {
    this.closeListener = listener;
  }

  /** Lets the process exit while this connection sits idle in a pool. */
  park(): void {
    this.socket.unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * GETs bytes [range.position, range.end] into the range's file. Resolves when every byte is
   * written; rejects with the cause otherwise, after writing whatever arrived, so `range.position`
   * is where a retry resumes.
   */
  get(request: RangeGet, range: FileRange, signal: AbortSignal): Promise<void> {
    if (!this.reusable) throw new Error('HttpConnection.get: the connection is busy or closed');
    const { url, etag } = request;
    let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nRange: bytes=${range.position}-${range.end}\r\n`;
    if (etag) head += `If-Match: ${etag}\r\n`;
    head += 'Accept-Encoding: identity\r\nUser-Agent: cdk-model-serving-fetcher\r\n\r\n';
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => this.fail(new FetchError('cancelled: another part of the download failed'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.answered = false;
      this.exchange = {
        range, first: range.position, etag, phase: 'head', status: 0, headers: new Map(), bodyLeft: 0, errorBodyStart: 0,
        settle: (err) => {
          signal.removeEventListener('abort', onAbort);
          if (err === undefined) resolve();
          else reject(err);
        },
      };
      this.socket.ref();
      this.socket.resume();
      this.socket.write(head, 'latin1');
      if (signal.aborted) onAbort();
    });
  }

  /** Where the next socket read lands: the free end of the block, no further than the body goes. */
  private readTarget(): Buffer {
    let room = this.block.length - this.filled;
    const exchange = this.exchange;
    if (exchange?.phase === 'body' && exchange.bodyLeft < room) room = exchange.bodyLeft;
    // Never empty: a block is flushed as soon as it fills, and head and error body stay far below a block.
    return this.block.subarray(this.filled, this.filled + Math.max(room, 1));
  }

  private onRead(bytes: number): boolean {
    const before = this.filled;
    this.filled += bytes;
    const exchange = this.exchange;
    if (!exchange) {
      this.socket.destroy();
      return false;
    }
    this.answered = true;
    const writeError = exchange.range.writeError;
    if (writeError) {
      this.fail(writeError);
      return false;
    }
    switch (exchange.phase) {
      case 'head':
        return this.onHead(exchange, before);
      case 'body':
        exchange.bodyLeft -= bytes;
        return this.flush(exchange);
      case 'error-body':
        this.onErrorBody(exchange);
        return true;
    }
  }

  private onHead(exchange: Exchange, before: number): boolean {
    const end = this.block.subarray(0, this.filled).indexOf(HEAD_END, Math.max(0, before - 3));
    if (end < 0) {
      if (this.filled >= MAX_HEAD_BYTES) this.fail(protocolError('the response head is larger than 64 KiB'));
      return true;
    }
    const lines = this.block.toString('latin1', 0, end).split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!status) {
      this.fail(protocolError(`not an HTTP/1.1 response: '${lines[0].slice(0, 80)}'`));
      return false;
    }
    exchange.status = Number(status[1]);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      exchange.headers.set(name, exchange.headers.has(name) ? `${exchange.headers.get(name)}, ${value}` : value);
    }
    if (/\bclose\b/i.test(exchange.headers.get('connection') ?? '')) this.keepAlive = false;
    const bodyStart = end + HEAD_END.length;

    if (exchange.status !== 206 && exchange.status !== 200) {
      this.keepAlive = false;
      exchange.phase = 'error-body';
      exchange.errorBodyStart = bodyStart;
      this.onErrorBody(exchange);
      return true;
    }
    let length: number;
    try {
      length = this.checkSuccess(exchange);
    } catch (err) {
      this.fail(err);
      return false;
    }
    this.block.copyWithin(0, bodyStart, this.filled);
    this.filled -= bodyStart;
    if (this.filled > length) {
      this.fail(protocolError(`the response carried more than its Content-Length of ${length} bytes`));
      return false;
    }
    exchange.phase = 'body';
    exchange.bodyLeft = length - this.filled;
    return this.flush(exchange);
  }

  /** A 200 or 206 must be exactly the bytes asked for, of the object version asked for; returns its length. */
  private checkSuccess(exchange: Exchange): number {
    const { headers, range, first } = exchange;
    const last = range.end;
    if (headers.has('transfer-encoding')) throw protocolError(`a ranged GET was answered with Transfer-Encoding: ${headers.get('transfer-encoding')}`);
    const length = Number(headers.get('content-length') ?? NaN);
    if (!Number.isSafeInteger(length)) throw protocolError('the response has no valid Content-Length');
    const wanted = last - first + 1;
    if (exchange.status === 206) {
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers.get('content-range') ?? '');
      if (!contentRange || Number(contentRange[1]) !== first || Number(contentRange[2]) !== last || length !== wanted) {
        throw protocolError(`asked for bytes ${first}-${last}, got Content-Range '${headers.get('content-range') ?? ''}' with ${length} bytes`);
      }
    } else if (first !== 0 || length !== wanted) {
      throw protocolError(`asked for bytes ${first}-${last}, got the whole object (${length} bytes): the server ignored Range`);
    }
    const etag = headers.get('etag');
    if (exchange.etag && etag && etag !== exchange.etag) {
      throw new S3ResponseError(412, 'PreconditionFailed', `the object's ETag changed from ${exchange.etag} to ${etag}`);
    }
    return length;
  }

  /** Writes the block once it is full or the body is complete; false pauses reading until writes drain. */
  private flush(exchange: Exchange): boolean {
    const done = exchange.bodyLeft === 0;
    let more = true;
    if (this.filled > 0 && (done || this.filled === this.block.length)) {
      more = exchange.range.write(this.block, this.filled, this.release);
      this.block = this.blocks.take();
      this.filled = 0;
    }
    if (done) {
      this.exchange = undefined;
      exchange.range.settled().then(() => exchange.settle(), (err) => exchange.settle(err));
      return true;
    }
    if (!more) {
      exchange.range.onDrain(() => this.socket.resume());
      return false;
    }
    return true;
  }

  /** Reads an error answer's body until it is complete (or 64 KiB), then fails with S3's code and message. */
  private onErrorBody(exchange: Exchange, ended = false): void {
    const body = this.block.subarray(exchange.errorBodyStart, this.filled);
    const length = exchange.headers.get('content-length');
    const complete = ended
      || body.length >= MAX_ERROR_BODY_BYTES
      || (length !== undefined ? body.length >= Number(length)
        : /chunked/i.test(exchange.headers.get('transfer-encoding') ?? '') && body.subarray(-LAST_CHUNK.length).equals(LAST_CHUNK));
    if (!complete) return;
    const text = body.toString('utf8');
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
    if (exchange.status === 416) {
      // Every range asked for lies inside the size the HEAD or listing gave: the object shrank.
      this.fail(new S3ResponseError(412, 'PreconditionFailed', `bytes ${exchange.first}-${exchange.range.end} are no longer in the object (${code ?? 'HTTP 416'})`));
      return;
    }
    this.fail(new S3ResponseError(exchange.status, code, message ?? `HTTP ${exchange.status}`, exchange.headers.get('x-amz-bucket-region')));
  }

  private onEnd(): void {
    const exchange = this.exchange;
    if (exchange?.phase === 'error-body') return this.onErrorBody(exchange, true);
    if (exchange) {
      const got = exchange.phase === 'body' ? exchange.range.position + this.filled - exchange.first : 0;
      const wanted = exchange.range.end - exchange.first + 1;
      this.fail(new FetchError(exchange.phase === 'body'
        ? `the connection closed after ${got} of ${wanted} bytes` : 'the connection closed before a response', 1, true));
    }
    this.socket.destroy();
  }

  private onIdleTimeout(): void {
    if (!this.exchange) {
      this.socket.destroy();
      return;
    }
    this.fail(Object.assign(new Error(`nothing received for ${this.options.idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' }));
  }

  /**
   * Ends the request in flight with `err`: what arrived of its body is written first, so the
   * range's position is exact, then the request settles once the writes have. The connection
   * is closed.
   */
  private fail(err: unknown): void {
    this.keepAlive = false;
    if (!this.closed) this.socket.destroy();
    const exchange = this.exchange;
    if (!exchange) return;
    this.exchange = undefined;
    if (exchange.phase === 'body' && this.filled > 0) {
      exchange.range.write(this.block, this.filled, this.release);
      this.block = this.blocks.take();
      this.filled = 0;
    }
    exchange.range.settled().then(() => exchange.settle(err), (writeError) => exchange.settle(writeError));
  }
}

function protocolError(message: string): FetchError {
  return new FetchError(`unexpected response from S3: ${message}`);
}
