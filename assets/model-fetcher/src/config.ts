import * as path from 'node:path';
import { FetchError } from './errors';
import { escapeForLog, parseS3Uri, S3Location } from './s3-location';

export interface FetcherConfig {
  readonly source: S3Location;
  /** Absolute destination directory. */
  readonly modelDir: string;
  /** Expected SHA-256 (lowercase hex) of a single-object model. */
  readonly sha256?: string;
  /** `zip`: the object is a zip archive whose contents are the model. */
  readonly unpack?: 'zip';
  /** Custom S3 endpoint (S3-compatible servers); implies path-style addressing. */
  readonly endpoint?: string;
  /** GET requests in flight at once (ranges of large objects, or small objects of a prefix). */
  readonly concurrency: number;
  /** Byte-range size for large objects. */
  readonly partSize: number;
  /** The whole download, retries included, must finish within this. */
  readonly timeoutSeconds: number;
  /**
   * The SHA-256 (lowercase hex) of every file a multi-file model must consist of, by path below
   * MODEL_DIR: a prefix's objects, or an archive's contents. Nothing more, nothing less.
   */
  readonly manifest?: ReadonlyMap<string, string>;
  /** The most files a prefix or an archive may hold. */
  readonly maxFiles: number;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** MODEL_MANIFEST: a JSON object mapping each file's path below MODEL_DIR to its SHA-256. */
function parseManifest(raw: string): Map<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new FetchError('MODEL_MANIFEST must be a JSON object mapping each file\'s path to its SHA-256', 2);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.keys(parsed).length === 0) {
    throw new FetchError('MODEL_MANIFEST must be a non-empty JSON object mapping each file\'s path to its SHA-256', 2);
  }
  const manifest = new Map<string, string>();
  for (const [file, sha] of Object.entries(parsed as Record<string, unknown>)) {
    const segments = file.split('/');
    if (file.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..')) {
      throw new FetchError(`MODEL_MANIFEST names '${escapeForLog(file)}', which is not a relative path below MODEL_DIR`, 2);
    }
    if (typeof sha !== 'string' || !SHA256.test(sha)) {
      throw new FetchError(`MODEL_MANIFEST gives '${escapeForLog(file)}' a SHA-256 that is not 64 lowercase hex digits`, 2);
    }
    manifest.set(file, sha);
  }
  return manifest;
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FetchError(`${name} must be an integer from ${min} to ${max}, got '${raw}'`, 2);
  }
  return value;
}

/** Reads the fetcher's configuration from the environment; throws a FetchError (exit 2) when it is wrong. */
export function loadConfig(env: NodeJS.ProcessEnv): FetcherConfig {
  const uri = env.MODEL_URI;
  if (!uri) throw new FetchError('MODEL_URI is not set: give the model as s3://bucket/key or s3://bucket/prefix/', 2);
  const source = parseS3Uri(uri.trim());

  const modelDir = env.MODEL_DIR;
  if (!modelDir) throw new FetchError('MODEL_DIR is not set: give the directory the model is written to', 2);

  const sha256 = env.MODEL_SHA256?.trim().toLowerCase() || undefined;
  if (sha256 !== undefined) {
    if (!SHA256.test(sha256)) throw new FetchError(`MODEL_SHA256 must be 64 hex digits, got '${env.MODEL_SHA256}'`, 2);
    if (source.isPrefix) throw new FetchError('MODEL_SHA256 applies to a single object, but MODEL_URI is a prefix (ends in /)', 2);
  }

  const unpack = env.MODEL_UNPACK?.trim() || undefined;
  if (unpack !== undefined && unpack !== 'zip') throw new FetchError(`MODEL_UNPACK must be 'zip' or unset, got '${unpack}'`, 2);
  if (unpack && source.isPrefix) throw new FetchError('MODEL_UNPACK=zip needs a single object, but MODEL_URI is a prefix', 2);

  const manifestRaw = env.MODEL_MANIFEST?.trim() || undefined;
  const manifest = manifestRaw === undefined ? undefined : parseManifest(manifestRaw);
  if (manifest && !source.isPrefix && !unpack) {
    throw new FetchError('MODEL_MANIFEST applies to a prefix or an archive; a single object is checked with MODEL_SHA256', 2);
  }

  return {
    source,
    modelDir: path.resolve(modelDir),
    sha256,
    unpack,
    manifest,
    maxFiles: intFromEnv(env, 'MODEL_MAX_FILES', 10_000, 1, 1_000_000),
    endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    concurrency: intFromEnv(env, 'MODEL_FETCH_CONCURRENCY', 16, 1, 256),
    partSize: intFromEnv(env, 'MODEL_FETCH_PART_MIB', 16, 1, 1024) * 2 ** 20,
    timeoutSeconds: intFromEnv(env, 'MODEL_FETCH_TIMEOUT_SECONDS', 900, 1, 86400),
  };
}
