import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { iamWildcardResourceId } from '../nag-ids';
import { InvalidPropError } from '../validation';
import { filesBelow, sha256File } from './files';
import { parseS3Uri } from './s3-uri';

/** What the model fetcher needs to download a model, as environment variables. */
export interface ModelSourceConfig {
  /** `s3://bucket/key` for one object, `s3://bucket/prefix/` for every object below a prefix. */
  readonly uri: string;
  /**
   * SHA-256 (hex) the downloaded object must have.
   * @default - no content hash is checked beyond the object's size
   */
  readonly sha256?: string;
  /**
   * The archive format of the object, when its contents are the model.
   * @default - the object is the model itself
   */
  readonly unpack?: ModelArchive;
  /**
   * The SHA-256 (hex) of every file of a multi-file model, by its path below the model directory:
   * the fetcher refuses any other set of files or bytes.
   * @default - no per-file check
   */
  readonly manifest?: Record<string, string>;
  /**
   * The model's files, by path below the model directory, when synth knows them (an asset, a
   * single object, a prefix with a manifest): the service checks them against its image.
   * @default - unknown until the task downloads the model
   */
  readonly files?: string[];
  /**
   * The model's size in bytes, when synth knows it (an asset, or `sizeBytes` on a bucket source):
   * the service checks that `startupTimeout` leaves time to download and load it.
   * @default - unknown
   */
  readonly sizeBytes?: number;
  /**
   * The version the service names the model by unless it is given one: the first 12 hex digits
   * of its SHA-256 (of its file manifest for a directory), else its S3 key.
   * @default 'unversioned'
   */
  readonly modelVersion?: string;
}

/** An archive the model fetcher unpacks into the model directory. */
export enum ModelArchive {
  /** A zip archive (MODEL_UNPACK=zip). */
  ZIP = 'zip',
}

/** Options for a model that is already in S3. */
export interface ModelBucketOptions {
  /**
   * SHA-256 (64 hex digits) of the model object; the fetcher refuses any other bytes.
   * Only for a single object, not a prefix.
   * @default - no content hash is checked
   */
  readonly sha256?: string;
  /**
   * For a prefix: the SHA-256 of every object below it, by its path below the prefix
   * (`{ 'model.joblib': '9f2c...', 'meta/labels.json': '51ab...' }`). The fetcher refuses a model
   * with any other files or bytes. Pin it when the prefix's objects could be replaced by someone
   * who should not choose what the task loads (a pickle runs code when it is loaded).
   * @default - each object is checked against S3's full-object SHA-256 when it has one, else by size
   */
  readonly manifest?: Record<string, string>;
  /**
   * The model's size in bytes (the object's, or the prefix's objects' together), as a hint: synth
   * refuses a `startupTimeout` too short to download and load that much (see `startupTimeout`).
   * @default - unknown: no such check
   */
  readonly sizeBytes?: number;
}

/** Options for a model named by an S3 URI. */
export interface ModelUriOptions extends ModelBucketOptions {
  /**
   * The KMS key that encrypts the bucket's objects; the task role is granted `kms:Decrypt` on it.
   * @default - the objects use S3-managed or AWS-managed encryption and need no grant
   */
  readonly encryptionKey?: kms.IKey;
}

const SHA256 = /^[0-9a-f]{64}$/;
/** The longest manifest a task definition carries (as MODEL_MANIFEST); ECS allows 64 KiB for all of it. */
const MAX_MANIFEST_CHARS = 24_000;

/**
 * Where the model comes from. The task's model fetcher downloads it when a task starts, and the
 * task role may read exactly that object or prefix and nothing else.
 */
export abstract class ModelSource {
  /**
   * A local model file or directory, uploaded by the CDK as an S3 asset. A file's SHA-256 is
   * computed at synth and checked by the fetcher; a directory is uploaded as a zip archive and
   * unpacked by the fetcher.
   */
  public static fromAsset(modelPath: string): ModelSource {
    const resolved = path.resolve(modelPath);
    if (!fs.existsSync(resolved)) {
      throw new InvalidPropError('ModelSource.fromAsset', 'modelPath', `${resolved} does not exist; give a model file or a directory`);
    }
    return new AssetModelSource(resolved);
  }

  /**
   * An object, or every object below a prefix (a key ending in `/`), in an existing bucket.
   * When the bucket has a KMS key, the task role is granted `kms:Decrypt` on it.
   */
  public static fromBucket(bucket: s3.IBucket, keyOrPrefix: string, options: ModelBucketOptions = {}): ModelSource {
    return new BucketModelSource('ModelSource.fromBucket', () => bucket, keyOrPrefix, options, bucket.encryptionKey);
  }

  /** An object (`s3://bucket/key`) or a prefix (`s3://bucket/prefix/`) in an existing bucket. */
  public static fromS3Uri(uri: string, options: ModelUriOptions = {}): ModelSource {
    const parsed = parseS3Uri(uri);
    if (typeof parsed === 'string') throw new InvalidPropError('ModelSource.fromS3Uri', 'uri', parsed);
    return new BucketModelSource(
      'ModelSource.fromS3Uri',
      (scope) => s3.Bucket.fromBucketName(scope, 'ModelBucket', parsed.bucketName),
      parsed.key,
      options,
      options.encryptionKey,
    );
  }

  /**
   * Grants `grantee` read access to the model and returns what the fetcher needs.
   * Called once by the service construct that uses this source.
   */
  public abstract bind(scope: Construct, grantee: iam.IGrantable): ModelSourceConfig;
}

class AssetModelSource extends ModelSource {
  private readonly isFile: boolean;
  private sha256?: string;
  private manifest?: Record<string, string>;

  constructor(private readonly modelPath: string) {
    super();
    this.isFile = fs.statSync(modelPath).isFile();
  }

  public bind(scope: Construct, grantee: iam.IGrantable): ModelSourceConfig {
    // A file's content hash is both the asset's identity and the fetcher's check, so the model is
    // read once at synth rather than fingerprinted and hashed separately. A directory is uploaded
    // as a zip that cdk-assets makes when it publishes, so its bytes are unknown at synth: its
    // files are, and the fetcher checks each of them once it has unpacked the archive.
    if (this.isFile) this.sha256 ??= sha256File(this.modelPath);
    else this.manifest ??= directoryManifest(this.modelPath);
    const asset = new s3assets.Asset(scope, 'ModelAsset', {
      path: this.modelPath,
      ...(this.sha256 ? { assetHashType: AssetHashType.CUSTOM, assetHash: this.sha256 } : {}),
    });
    grantModelRead(scope, grantee, asset.bucket, asset.s3ObjectKey, false);
    return {
      uri: asset.s3ObjectUrl,
      sha256: this.sha256,
      unpack: asset.isZipArchive ? ModelArchive.ZIP : undefined,
      manifest: this.manifest,
      files: this.manifest ? Object.keys(this.manifest) : [path.basename(this.modelPath)],
      sizeBytes: this.isFile ? fs.statSync(this.modelPath).size
        : filesBelow(this.modelPath).reduce((sum, f) => sum + fs.statSync(path.join(this.modelPath, f)).size, 0),
      modelVersion: contentVersion(this.sha256, this.manifest)!,
    };
  }
}

class BucketModelSource extends ModelSource {
  private readonly isPrefix: boolean;

  constructor(
    where: string,
    private readonly bucket: (scope: Construct) => s3.IBucket,
    private readonly key: string,
    private readonly options: ModelBucketOptions,
    private readonly encryptionKey?: kms.IKey,
  ) {
    super();
    if (!Token.isUnresolved(key)) checkKey(where, key);
    this.isPrefix = key.endsWith('/');
    if (options.sha256 !== undefined) {
      if (!SHA256.test(options.sha256)) {
        throw new InvalidPropError(where, 'sha256', `must be 64 lowercase hex digits, got '${options.sha256}'`);
      }
      if (this.isPrefix) {
        throw new InvalidPropError(where, 'sha256', `applies to a single object, but '${key}' is a prefix (ends in /)`);
      }
    }
    if (options.manifest !== undefined) {
      if (!this.isPrefix) {
        throw new InvalidPropError(where, 'manifest', `applies to a prefix, but '${key}' is a single object: give its sha256 instead`);
      }
      checkManifest(where, options.manifest);
    }
    if (options.sizeBytes !== undefined && !(Number.isSafeInteger(options.sizeBytes) && options.sizeBytes > 0)) {
      throw new InvalidPropError(where, 'sizeBytes', `must be a whole number of bytes above 0, got ${options.sizeBytes}`);
    }
  }

  public bind(scope: Construct, grantee: iam.IGrantable): ModelSourceConfig {
    const bucket = this.bucket(scope);
    grantModelRead(scope, grantee, bucket, this.key, this.isPrefix, this.encryptionKey);
    return {
      uri: `s3://${bucket.bucketName}/${this.key}`,
      sha256: this.options.sha256,
      manifest: this.options.manifest,
      files: this.isPrefix ? (this.options.manifest && Object.keys(this.options.manifest))
        : Token.isUnresolved(this.key) ? undefined : [path.posix.basename(this.key)],
      sizeBytes: this.options.sizeBytes,
      modelVersion: contentVersion(this.options.sha256, this.options.manifest) ?? this.key.replace(/\/+$/, ''),
    };
  }
}

/** A version named by the model's content: its checksum, or its manifest's. */
function contentVersion(sha256?: string, manifest?: Record<string, string>): string | undefined {
  if (sha256) return sha256.slice(0, 12);
  if (!manifest) return undefined;
  const canonical = JSON.stringify(Object.entries(manifest).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}

/** Every file below `dir` with its SHA-256, by its path below `dir` with '/' separators. */
function directoryManifest(dir: string): Record<string, string> {
  const manifest = Object.fromEntries(filesBelow(dir).map((f) => [f, sha256File(path.join(dir, f))]));
  checkManifest('ModelSource.fromAsset', manifest, dir);
  return manifest;
}

/** A manifest the fetcher accepts, small enough for a task definition. */
function checkManifest(where: string, manifest: Record<string, string>, dir?: string): void {
  const prop = dir ? 'modelPath' : 'manifest';
  const entries = Object.entries(manifest);
  if (entries.length === 0) throw new InvalidPropError(where, prop, dir ? `${dir} has no files` : 'must name at least one file');
  for (const [file, sha] of entries) {
    if (file.startsWith('/') || file.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new InvalidPropError(where, prop, `names '${file}', which is not a relative path below the model directory`);
    }
    if (!SHA256.test(sha)) throw new InvalidPropError(where, prop, `gives '${file}' '${sha}', which is not 64 lowercase hex digits`);
  }
  if (JSON.stringify(manifest).length > MAX_MANIFEST_CHARS) {
    throw new InvalidPropError(where, prop, `${dir ?? 'the manifest'} has ${entries.length} files, too many for their SHA-256 list ` +
      `(which the fetcher checks) to fit the task definition: pack the model into one file (a .joblib, or an archive), or use fewer files`);
  }
}

/**
 * Keys the grant and the fetcher can name exactly: IAM reads `*` and `?` in a resource ARN as
 * wildcards and `${...}` as a policy variable, so such a key would widen the grant; and a `.`,
 * `..` or empty path segment is a different object to S3 than to a file system.
 */
function checkKey(where: string, key: string): void {
  if (key.length === 0) throw new InvalidPropError(where, 'keyOrPrefix', 'must not be empty; give an object key or a prefix ending in /');
  if (key.startsWith('/')) throw new InvalidPropError(where, 'keyOrPrefix', `must not start with '/', got '${key}'`);
  const special = /[*?$]/.exec(key);
  if (special) {
    throw new InvalidPropError(where, 'keyOrPrefix',
      `'${key}' has '${special[0]}', which IAM reads as ${special[0] === '$' ? 'the start of a policy variable' : 'a wildcard'} in the grant's resource ARN, so the task could read other objects: move the model to a key without '*', '?' or '$'`);
  }
  const segments = (key.endsWith('/') ? key.slice(0, -1) : key).split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new InvalidPropError(where, 'keyOrPrefix', `'${key}' has an empty, '.' or '..' path segment; name the object or prefix exactly`);
  }
}

/**
 * Least privilege for the fetcher: `s3:GetObject` on the object (or the objects below the
 * prefix), `s3:ListBucket` only for that prefix, and `kms:Decrypt` only when there is a key.
 */
function grantModelRead(
  scope: Construct, grantee: iam.IGrantable, bucket: s3.IBucket, key: string, isPrefix: boolean, encryptionKey?: kms.IKey,
): void {
  const objects = bucket.arnForObjects(isPrefix ? `${key}*` : key);
  iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [objects] });
  if (isPrefix) {
    // The finding's id spells the ARN as the template finally does. For a bucket from another
    // stack that is an import CDK creates only at synth, after the constructs are built and before
    // they are validated: so the acknowledgement is made then, exactly as broad as the finding.
    scope.node.addValidation({
      validate: () => {
        Validations.of(scope).acknowledge({
          id: iamWildcardResourceId(scope, objects),
          reason: `The model is every object below the prefix '${key}', so reading it needs s3:GetObject on '${key}*'; the wildcard covers that prefix and nothing else in the bucket.`,
        });
        return [];
      },
    });
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${key}*`] } },
    }));
  }
  encryptionKey?.grantDecrypt(grantee);
}
