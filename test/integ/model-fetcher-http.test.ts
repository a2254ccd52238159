import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileRange, FileWriter } from '../../assets/model-fetcher/src/file-range';
import { HttpPool } from '../../assets/model-fetcher/src/http-pool';
import { isRetryable } from '../../assets/model-fetcher/src/retry';

/**
 * The fetcher's own HTTP/1.1 client against scripted servers on 127.0.0.1: real sockets, real
 * files, each response written exactly as the test says (split, cut, wrong, stalled).
 */

const OBJECT = randomBytes(3 * 2 ** 20 + 12345);
const ETAG = '"0123456789abcdef"';

interface Request {
  readonly head: string;
  readonly connection: number;
  readonly socket: net.Socket;
}

/** A TCP server that hands every HTTP request it reads to `answer`. */
class ScriptedServer {
  static async start(answer: (request: Request, n: number) => void): Promise<ScriptedServer> {
    let scripted: ScriptedServer;
    const server = net.createServer((socket) => {
      const connection = ++scripted.connections;
      scripted.sockets.add(socket);
      socket.on('close', () => scripted.sockets.delete(socket));
      socket.on('error', () => undefined);
      let pending = '';
      socket.on('data', (data) => {
        pending += data.toString('latin1');
        let end: number;
        while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
          const request = { head: pending.slice(0, end), connection, socket };
          pending = pending.slice(end + 4);
          scripted.requests.push(request);
          answer(request, scripted.requests.length);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    scripted = new ScriptedServer(server, new URL(`http://127.0.0.1:${port}/models/model.bin?X-Amz-Signature=abc`));
    return scripted;
  }

  readonly requests: Request[] = [];
  connections = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly url: URL) {}

  async stop(): Promise<void> {
    this.sockets.forEach((s) => s.destroy());
    await new Promise((r) => this.server.close(r));
  }
}

/** The range a request asks for. */
function rangeOf(head: string): [number, number] {
  const m = /\r\nRange: bytes=(\d+)-(\d+)/.exec(head);
  if (!m) throw new Error(`no Range in ${head}`);
  return [Number(m[1]), Number(m[2])];
}

function partial(first: number, last: number, extra: Record<string, string> = {}): string {
  const headers = { 'Content-Length': String(last - first + 1), 'Content-Range': `bytes ${first}-${last}/${OBJECT.length}`, 'ETag': ETAG, ...extra };
  return `HTTP/1.1 206 Partial Content\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
}

/** Answers a ranged GET correctly, the body in pieces of `piece` bytes. */
function answerRange({ head, socket }: Request, piece = 1 << 20): void {
  const [first, last] = rangeOf(head);
  socket.write(partial(first, last));
  for (let at = first; at <= last; at += piece) socket.write(OBJECT.subarray(at, Math.min(last + 1, at + piece)));
}

let dir: string;
let pool: HttpPool;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fetcher-http-'));
  pool = new HttpPool({ connectTimeoutMs: 2000, idleTimeoutMs: 2000 });
});

afterEach(() => {
  pool.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** GETs bytes [first, last] of the server's object into a fresh file; returns the range, the file and any error. */
async function getRange(server: ScriptedServer, first: number, last: number, signal = new AbortController().signal) {
  const file = path.join(dir, `part-${first}-${randomBytes(3).toString('hex')}`);
  const fd = fs.openSync(file, 'w+');
  let written = 0;
  const range = new FileRange(new FileWriter(fd), first, last, (bytes) => (written += bytes));
  let error: any;
  try {
    await pool.get({ url: server.url, etag: ETAG }, range, signal);
  } catch (err) {
    error = err;
  } finally {
    fs.closeSync(fd);
  }
  const bytes = fs.readFileSync(file);
  return { range, error, written, got: bytes.subarray(first, range.position) };
}

test('a head split byte by byte and a body in odd pieces land byte for byte; the request carries Range, If-Match and Host', async () => {
  const server = await ScriptedServer.start(({ head, socket }) => {
    const [first, last] = rangeOf(head);
    const response = Buffer.concat([Buffer.from(partial(first, last), 'latin1'), OBJECT.subarray(first, last + 1)]);
    const headEnd = response.indexOf('\r\n\r\n') + 4;
    socket.setNoDelay(true);
    let at = 0;
    // The head a byte per TCP segment (1 ms apart, so each is its own read), then the body.
    const next = () => {
      if (at >= response.length) return;
      const size = at < headEnd ? 1 : 77_777;
      socket.write(response.subarray(at, (at += size)), () => (at < headEnd ? setTimeout(next, 1) : next()));
    };
    next();
  });
  try {
    const { error, got, range, written } = await getRange(server, 1000, OBJECT.length - 1);
    expect(error).toBeUndefined();
    expect(range.position).toBe(OBJECT.length);
    expect(written).toBe(OBJECT.length - 1000);
    expect(got.equals(OBJECT.subarray(1000))).toBe(true);
    const [request] = server.requests;
    expect(request.head).toMatch(new RegExp(`^GET /models/model\\.bin\\?X-Amz-Signature=abc HTTP/1\\.1\\r\\nHost: ${server.url.host}\\r\\n`));
    expect(request.head).toContain(`\r\nRange: bytes=1000-${OBJECT.length - 1}`);
    expect(request.head).toContain(`\r\nIf-Match: ${ETAG}`);
  } finally {
    await server.stop();
  }
});

test('a kept-alive connection is reused; one the server drops before answering is replaced without failing the request', async () => {
  const server = await ScriptedServer.start((request, n) => (n === 3 ? request.socket.destroy() : answerRange(request)));
  try {
    for (const [first, last] of [[0, 99_999], [100_000, 199_999], [200_000, 299_999]]) {
      const { error, got } = await getRange(server, first, last);
      expect(error).toBeUndefined();
      expect(got.equals(OBJECT.subarray(first, last + 1))).toBe(true);
    }
    // Requests 1 and 2 shared connection 1; request 3 died with it and went again on connection 2.
    expect(server.requests.map((r) => r.connection)).toEqual([1, 1, 1, 2]);
  } finally {
    await server.stop();
  }
});

test("error answers become S3's errors: 503 SlowDown (chunked), 403 AccessDenied, 301 naming the bucket's region", async () => {
  const xml = (code: string, message: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  const answers = [
    () => {
      const body = xml('SlowDown', 'Please reduce your request rate.');
      return `HTTP/1.1 503 Slow Down\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    },
    () => {
      const body = xml('AccessDenied', 'Access Denied');
      return `HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    },
    () => {
      const body = xml('PermanentRedirect', 'The bucket you are attempting to access must be addressed using the specified endpoint.');
      return `HTTP/1.1 301 Moved Permanently\r\nx-amz-bucket-region: eu-west-1\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    },
  ];
  const server = await ScriptedServer.start(({ socket }, n) => socket.write(answers[n - 1]()));
  try {
    const slow = (await getRange(server, 0, 9)).error;
    expect(slow).toMatchObject({ name: 'SlowDown', message: 'Please reduce your request rate.', $metadata: { httpStatusCode: 503 } });
    expect(isRetryable(slow)).toBe(true);
    const denied = (await getRange(server, 0, 9)).error;
    expect(denied).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(isRetryable(denied)).toBe(false);
    const moved = (await getRange(server, 0, 9)).error;
    expect(moved).toMatchObject({ name: 'PermanentRedirect', bucketRegion: 'eu-west-1', $metadata: { httpStatusCode: 301 } });
    // An error answer closes its connection: three requests, three connections.
    expect(server.connections).toBe(3);
  } finally {
    await server.stop();
  }
});

test('a body cut off: what arrived is in the file, the position says where to resume, and the error is retryable', async () => {
  const server = await ScriptedServer.start(({ head, socket }) => {
    const [first, last] = rangeOf(head);
    socket.write(partial(first, last));
    socket.write(OBJECT.subarray(first, first + 300_001), () => socket.destroy());
  });
  try {
    const { error, got, range, written } = await getRange(server, 5, 2_000_004);
    expect(error).toMatchObject({ message: 'the connection closed after 300001 of 2000000 bytes' });
    expect(isRetryable(error)).toBe(true);
    expect(range.position).toBe(5 + 300_001);
    expect(written).toBe(300_001);
    expect(got.equals(OBJECT.subarray(5, 5 + 300_001))).toBe(true);
  } finally {
    await server.stop();
  }
});

test('a response that is not the bytes asked for, of the version asked for, fails at once and is not retried', async () => {
  const wrong: Array<[string, (first: number, last: number) => string | Buffer, RegExp]> = [
    ['another range', (first, last) => partial(first + 1, last + 1), /asked for bytes 10-19, got Content-Range 'bytes 11-20\/\d+' with 10 bytes/],
    ['the whole object', () => `HTTP/1.1 200 OK\r\nContent-Length: ${OBJECT.length}\r\nETag: ${ETAG}\r\n\r\n`, /got the whole object \(\d+ bytes\): the server ignored Range/],
    ['no Content-Length', () => 'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\n\r\n', /no valid Content-Length/],
    ['a chunked body', () => 'HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n\r\n', /answered with Transfer-Encoding: chunked/],
    ['more than its length', (first, last) => Buffer.concat([Buffer.from(partial(first, last)), OBJECT.subarray(first, last + 2)]), /more than its Content-Length of 10 bytes/],
    ['not HTTP', () => 'SSH-2.0-OpenSSH_9.2\r\n\r\n', /not an HTTP\/1\.1 response: 'SSH-2\.0-OpenSSH_9\.2'/],
  ];
  for (const [what, answer, message] of wrong) {
    const server = await ScriptedServer.start(({ head, socket }) => socket.write(answer(...rangeOf(head))));
    try {
      const { error } = await getRange(server, 10, 19);
      expect([what, error?.message]).toEqual([what, expect.stringMatching(message)]);
      expect(isRetryable(error)).toBe(false);
    } finally {
      await server.stop();
    }
  }
});

test('an object whose ETag changed fails as PreconditionFailed, even from a server that ignores If-Match', async () => {
  const server = await ScriptedServer.start(({ head, socket }) => {
    const [first, last] = rangeOf(head);
    socket.write(partial(first, last, { ETag: '"another-version"' }));
    socket.write(OBJECT.subarray(first, last + 1));
  });
  try {
    const { error } = await getRange(server, 0, 999);
    expect(error).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    expect(error.message).toContain('"another-version"');
    expect(isRetryable(error)).toBe(false);
  } finally {
    await server.stop();
  }
});

test('a range the object no longer has (416) means the object changed: PreconditionFailed, not retried', async () => {
  const body = '<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message></Error>';
  const server = await ScriptedServer.start(({ socket }) => socket.write(`HTTP/1.1 416 Requested Range Not Satisfiable\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
  try {
    const { error } = await getRange(server, 1000, 1999);
    expect(error).toMatchObject({ name: 'PreconditionFailed', message: 'bytes 1000-1999 are no longer in the object (InvalidRange)' });
    expect(isRetryable(error)).toBe(false);
  } finally {
    await server.stop();
  }
});

test('a server that stalls mid-body fails the request after the idle timeout, retryably', async () => {
  const server = await ScriptedServer.start(({ head, socket }) => {
    const [first, last] = rangeOf(head);
    socket.write(partial(first, last));
    socket.write(OBJECT.subarray(first, first + 1000));
  });
  pool = new HttpPool({ connectTimeoutMs: 2000, idleTimeoutMs: 300 });
  try {
    const started = Date.now();
    const { error, range } = await getRange(server, 0, 99_999);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toMatchObject({ code: 'ETIMEDOUT', message: 'nothing received for 0.3 s' });
    expect(isRetryable(error)).toBe(true);
    expect(range.position).toBe(1000);
  } finally {
    await server.stop();
  }
});

test('an abort ends a request in flight at once, keeping what arrived', async () => {
  const server = await ScriptedServer.start(({ head, socket }) => {
    const [first, last] = rangeOf(head);
    socket.write(partial(first, last));
    socket.write(OBJECT.subarray(first, first + 4096));
  });
  try {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const { error, range } = await getRange(server, 0, 99_999, abort.signal);
    expect(error?.message).toBe('cancelled: another part of the download failed');
    expect(isRetryable(error)).toBe(false);
    expect(range.position).toBe(4096);
  } finally {
    await server.stop();
  }
});

test('nothing listening: the connection error is retryable', async () => {
  const server = await ScriptedServer.start(() => undefined);
  await server.stop();
  const { error } = await getRange(server, 0, 9);
  expect(error).toMatchObject({ code: 'ECONNREFUSED' });
  expect(isRetryable(error)).toBe(true);
});
