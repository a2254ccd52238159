import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './net';

// s3rver ships without types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

// The test process runs on the host's Node.js; the SDK's notice about its version is not news here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** A real S3-compatible server (s3rver) on 127.0.0.1, with a client for seeding it. */
export class LocalS3 {
  private constructor(
    private readonly server: any,
    readonly endpoint: string,
    readonly client: S3Client,
    private readonly dir: string,
  ) {}

  static async start(): Promise<LocalS3> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-'));
    const port = await freePort();
    const server = new S3rver({ address: '127.0.0.1', port, directory: dir, silent: true });
    await server.run();
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    return new LocalS3(server, endpoint, client, dir);
  }

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
    await this.server.close();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
