import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './net';

const S3RVER_CLI = require.resolve('s3rver/bin/s3rver.js');

/**
 * A real S3-compatible server (s3rver) on 127.0.0.1, in its own Node.js process, with a client
 * for seeding it. Its own process: s3rver encrypts ListObjectsV2 continuation tokens with DES,
 * which OpenSSL 3 allows only with the legacy provider, so listings past 1,000 keys need
 * --openssl-legacy-provider, and that flag stays out of everything else.
 */
export class LocalS3 {
  /**
   * Starts s3rver on a free port of 127.0.0.1, never one of `avoidPorts`: a port another part of
   * the caller chose but has not bound yet (npm run local's server port) is free to the OS too.
   */
  static async start(avoidPorts: readonly number[] = []): Promise<LocalS3> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-'));
    let port = await freePort();
    for (let tries = 0; avoidPorts.includes(port) && tries < 20; tries++) port = await freePort();
    if (avoidPorts.includes(port)) throw new Error(`no free port for the embedded S3 server apart from ${avoidPorts.join(', ')}`);
    const child = spawn(process.execPath, ['--openssl-legacy-provider', S3RVER_CLI, '--address', '127.0.0.1', '--port', String(port), '--directory', dir, '--silent'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    const endpoint = `http://127.0.0.1:${port}`;
    await waitForPort(port, child, () => stderr);
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    return new LocalS3(child, endpoint, client, dir);
  }

  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
    readonly client: S3Client,
    private readonly dir: string,
  ) {}

  async createBucket(name: string): Promise<void> {
    await this.client.send(new CreateBucketCommand({ Bucket: name }));
  }

  async put(bucket: string, key: string, body: Buffer | string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  /** The environment a fetcher process needs to reach this server. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_S3: this.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  }

  async stop(): Promise<void> {
    this.client.destroy();
    // Not yet exited. (A signal to the whole process group, as Ctrl-C in `npm run local` sends,
    // may have ended it already: then exitCode stays null and signalCode is set.)
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** Waits (bounded) until something accepts connections on 127.0.0.1:port. */
async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`s3rver exited (${child.exitCode}): ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`s3rver did not start listening on 127.0.0.1:${port}: ${output()}`);
}
