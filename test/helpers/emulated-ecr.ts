import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { LocalRegistry } from './registry';

/**
 * The only part of AWS the CI tests emulate: the ECR API (GetAuthorizationToken,
 * DescribeRepositories, DescribeImages, BatchGetImage, PutImage, DescribeImageScanFindings) and
 * the two STS calls that cdk-assets makes to assume the bootstrap image-publishing role. The SDK
 * reaches it through AWS_ENDPOINT_URL_ECR and AWS_ENDPOINT_URL_STS. Images live in a real
 * registry: repository URIs point at it and image lookups read its manifests. Scan results are
 * scripted per image digest.
 */
export const ACCOUNT = '123456789012';
/**
 * What AssumeRole hands out, so a test can tell calls made under the assumed role. It is also the
 * one key pair the local S3 server (s3rver) accepts, so that the role can upload file assets there.
 */
export const ASSUMED_ACCESS_KEY = 'S3RVER';

export interface ScanScript {
  /** Answers IN_PROGRESS this many times (Infinity: never completes) before the final status. */
  readonly inProgressPolls?: number;
  /** The status once no longer IN_PROGRESS: COMPLETE, ACTIVE, FAILED, LIMIT_EXCEEDED, IMAGE_ARCHIVED, ... @default 'COMPLETE' */
  readonly status?: string;
  readonly findings?: ReadonlyArray<{ name: string; severity: string; packageName?: string; packageVersion?: string }>;
  /** findingSeverityCounts as ECR answers them, when they should disagree with the findings. @default - counted from the findings */
  readonly counts?: Record<string, number>;
  /** When the scan completed, in seconds since the epoch. @default - now */
  readonly completedAt?: number;
  /** Answer as enhanced (Inspector) scanning does. */
  readonly enhanced?: boolean;
}

export interface EmulatedCall {
  readonly service: 'ecr' | 'sts';
  readonly action: string;
  readonly accessKeyId?: string;
  readonly input: any;
}

class AwsError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
  }
}

export class EmulatedEcr {
  readonly calls: EmulatedCall[] = [];
  readonly repositories = new Set<string>();
  /** Settings of repositories that lack a ModelImageRepository's (immutable tags, scan on push). */
  readonly settings = new Map<string, { imageTagMutability?: string; scanOnPush?: boolean }>();
  /** Repositories whose every call is denied, as IAM would without a grant. */
  readonly denied = new Set<string>();
  private readonly scans = new Map<string, ScanScript & { polls: number }>();
  private server!: http.Server;
  url!: string;

  constructor(private readonly registry?: LocalRegistry, readonly region = 'us-east-1') {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.handle(req, Buffer.concat(chunks).toString('utf8')).then(
          ({ status, type, body }) => res.writeHead(status, { 'content-type': type }).end(body),
          (err) => {
            const error = err instanceof AwsError ? err : new AwsError('ServerException', String(err?.stack ?? err), 500);
            res.writeHead(error.status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': error.type })
              .end(JSON.stringify({ __type: error.type, message: error.message }));
          });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** The environment that points the AWS SDK (and so cdk-assets and the CLI) here. */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_ECR: this.url,
      AWS_ENDPOINT_URL_STS: this.url,
      AWS_REGION: this.region,
      AWS_ACCESS_KEY_ID: 'AKIAEMULATEDCIUSER01',
      AWS_SECRET_ACCESS_KEY: 'emulated-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    };
  }

  scan(digest: string, script: ScanScript): void {
    this.scans.set(digest, { ...script, polls: 0 });
  }

  private async handle(req: http.IncomingMessage, body: string): Promise<{ status: number; type: string; body: string }> {
    const accessKeyId = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
    const target = req.headers['x-amz-target'];
    if (typeof target === 'string' && target.startsWith('AmazonEC2ContainerRegistry_V20150921.')) {
      const action = target.split('.')[1];
      const input = body ? JSON.parse(body) : {};
      this.calls.push({ service: 'ecr', action, accessKeyId, input });
      const output = await this.ecr(action, input);
      return { status: 200, type: 'application/x-amz-json-1.1', body: JSON.stringify(output) };
    }
    const form = new URLSearchParams(body);
    const action = form.get('Action') ?? '';
    this.calls.push({ service: 'sts', action, accessKeyId, input: Object.fromEntries(form) });
    return { status: 200, type: 'text/xml', body: this.sts(action, form) };
  }

  private sts(action: string, form: URLSearchParams): string {
    const ns = 'https://sts.amazonaws.com/doc/2011-06-15/';
    if (action === 'GetCallerIdentity') {
      return `<GetCallerIdentityResponse xmlns="${ns}"><GetCallerIdentityResult><Arn>arn:aws:iam::${ACCOUNT}:user/ci</Arn>` +
        `<UserId>AIDAEMULATED</UserId><Account>${ACCOUNT}</Account></GetCallerIdentityResult>` +
        '<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>';
    }
    if (action === 'AssumeRole') {
      const expiration = new Date(Date.now() + 3600_000).toISOString();
      return `<AssumeRoleResponse xmlns="${ns}"><AssumeRoleResult><Credentials><AccessKeyId>${ASSUMED_ACCESS_KEY}</AccessKeyId>` +
        `<SecretAccessKey>S3RVER</SecretAccessKey><SessionToken>emulated-session</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
        `<AssumedRoleUser><Arn>${form.get('RoleArn')}/session</Arn><AssumedRoleId>AROAEMULATED:session</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>` +
        '<ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></AssumeRoleResponse>';
    }
    throw new AwsError('InvalidAction', `the emulated STS has no ${action}`);
  }

  private repository(name: string): string {
    if (this.denied.has(name)) {
      throw new AwsError('AccessDeniedException', `User: arn:aws:iam::${ACCOUNT}:user/ci is not authorized to perform this operation on resource: arn:aws:ecr:${this.region}:${ACCOUNT}:repository/${name} because no identity-based policy allows it`);
    }
    if (!this.repositories.has(name)) {
      throw new AwsError('RepositoryNotFoundException', `The repository with name '${name}' does not exist in the registry with id '${ACCOUNT}'`);
    }
    return name;
  }

  private async digestOf(repository: string, imageId: { imageTag?: string; imageDigest?: string }): Promise<string> {
    if (imageId.imageDigest) return imageId.imageDigest;
    const digest = this.registry && await this.registry.digestOf(repository, imageId.imageTag!);
    if (!digest) {
      throw new AwsError('ImageNotFoundException', `The image with imageId {imageDigest:'null', imageTag:'${imageId.imageTag}'} does not exist within the repository with name '${repository}' in the registry with id '${ACCOUNT}'`);
    }
    return digest;
  }

  private async ecr(action: string, input: any): Promise<unknown> {
    switch (action) {
      case 'GetAuthorizationToken':
        return {
          authorizationData: [{
            authorizationToken: Buffer.from('AWS:emulated-ecr-password').toString('base64'),
            expiresAt: Date.now() / 1000 + 43200,
            proxyEndpoint: `http://${this.registry?.host ?? '127.0.0.1:1'}`,
          }],
        };
      case 'DescribeRepositories':
        return {
          repositories: (input.repositoryNames as string[]).map((name) => ({
            repositoryName: this.repository(name),
            repositoryArn: `arn:aws:ecr:${this.region}:${ACCOUNT}:repository/${name}`,
            registryId: ACCOUNT,
            repositoryUri: `${this.registry?.host ?? `${ACCOUNT}.dkr.ecr.${this.region}.amazonaws.com`}/${name}`,
            imageTagMutability: this.settings.get(name)?.imageTagMutability ?? 'IMMUTABLE',
            imageScanningConfiguration: { scanOnPush: this.settings.get(name)?.scanOnPush ?? true },
          })),
        };
      case 'DescribeImages': {
        const repositoryName = this.repository(input.repositoryName);
        const imageDetails = [];
        for (const imageId of input.imageIds ?? []) {
          imageDetails.push({
            repositoryName,
            registryId: ACCOUNT,
            imageDigest: await this.digestOf(repositoryName, imageId),
            imageTags: imageId.imageTag ? [imageId.imageTag] : [],
          });
        }
        return { imageDetails };
      }
      case 'BatchGetImage': {
        const repositoryName = this.repository(input.repositoryName);
        const images = [];
        for (const imageId of input.imageIds) {
          const manifest = await this.registry?.manifest(repositoryName, imageId.imageDigest ?? imageId.imageTag);
          if (manifest) {
            images.push({
              repositoryName, registryId: ACCOUNT, imageId: { ...imageId, imageDigest: manifest.digest },
              imageManifest: manifest.body, imageManifestMediaType: manifest.mediaType,
            });
          }
        }
        return { images, failures: [] };
      }
      case 'PutImage': {
        const repositoryName = this.repository(input.repositoryName);
        // Tags are immutable, as in a ModelImageRepository: a tag never moves to another image.
        const existing = await this.registry!.digestOf(repositoryName, input.imageTag);
        if (existing) {
          const wanted = `sha256:${createHash('sha256').update(input.imageManifest).digest('hex')}`;
          if (existing === wanted) throw new AwsError('ImageAlreadyExistsException', `Image with digest '${existing}' and tag '${input.imageTag}' already exists in the repository with name '${repositoryName}'`);
          throw new AwsError('ImageTagAlreadyExistsException', `The image tag '${input.imageTag}' already exists in the '${repositoryName}' repository and cannot be overwritten because the repository is immutable.`);
        }
        const pushed = await this.registry!.putManifest(repositoryName, input.imageTag, input.imageManifest, input.imageManifestMediaType);
        return {
          image: {
            repositoryName, registryId: ACCOUNT, imageId: { imageDigest: pushed, imageTag: input.imageTag }, imageManifest: input.imageManifest,
          },
        };
      }
      case 'DescribeImageScanFindings':
        return this.scanFindings(input);
      default:
        throw new AwsError('InvalidAction', `the emulated ECR has no ${action}`);
    }
  }

  private async scanFindings(input: any): Promise<unknown> {
    const repositoryName = this.repository(input.repositoryName);
    const digest = await this.digestOf(repositoryName, input.imageId);
    const script = this.scans.get(digest);
    if (!script) {
      throw new AwsError('ScanNotFoundException', `Image scan does not exist for the image with '{imageDigest:'${digest}', imageTag:'null'}' in the repository with name '${repositoryName}' in the registry with id '${ACCOUNT}'`);
    }
    const base = { repositoryName, registryId: ACCOUNT, imageId: { imageDigest: digest } };
    if (script.polls++ < (script.inProgressPolls ?? 0)) {
      return { ...base, imageScanStatus: { status: 'IN_PROGRESS', description: 'The scan is in progress' } };
    }
    const status = script.status ?? 'COMPLETE';
    if (status === 'FAILED') return { ...base, imageScanStatus: { status, description: 'UnsupportedImageError: The operating system and/or package manager are not supported.' } };
    if (status !== 'COMPLETE' && status !== 'ACTIVE') return { ...base, imageScanStatus: { status, description: `The scan ended ${status}.` } };
    // Two findings a page, so that callers must follow nextToken.
    const all = script.findings ?? [];
    const start = Number(input.nextToken ?? 0);
    const page = all.slice(start, start + 2);
    const nextToken = start + 2 < all.length ? String(start + 2) : undefined;
    const counts: Record<string, number> = { ...script.counts };
    if (!script.counts) for (const f of all) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
    const findings = script.enhanced
      ? {
        enhancedFindings: page.map((f) => ({
          severity: f.severity, title: `${f.name} - ${f.packageName}`, status: 'ACTIVE', type: 'PACKAGE_VULNERABILITY',
          packageVulnerabilityDetails: { vulnerabilityId: f.name, sourceUrl: `https://nvd.nist.gov/vuln/detail/${f.name}`, vulnerablePackages: [{ name: f.packageName, version: f.packageVersion }] },
        })),
      }
      : {
        findings: page.map((f) => ({
          name: f.name, severity: f.severity, uri: `https://security-tracker.debian.org/tracker/${f.name}`,
          attributes: [{ key: 'package_name', value: f.packageName }, { key: 'package_version', value: f.packageVersion }],
        })),
      };
    return {
      ...base,
      imageScanStatus: { status, description: 'The scan was completed successfully.' },
      imageScanFindings: { imageScanCompletedAt: script.completedAt ?? Date.now() / 1000, findingSeverityCounts: counts, ...findings },
      ...(nextToken ? { nextToken } : {}),
    };
  }
}
