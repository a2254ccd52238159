import * as http from 'node:http';
import * as https from 'node:https';
import { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { FetcherConfig, loadConfig } from './config';
import { describeCause, FetchError } from './errors';
import { fetchModel, ObjectError } from './fetch-model';
import { HttpPool } from './http-pool';
import { Progress } from './progress';
import { escapeForLog, formatS3Uri } from './s3-location';
import { UrlSigner } from './url-signer';

const CONNECT_TIMEOUT_MS = 5000;
const IDLE_TIMEOUT_MS = 30000;

/** The AWS SDK client for HEAD and LIST, in `region` when given. */
function s3Client(config: FetcherConfig, region?: string): S3Client {
  const options: S3ClientConfig = {
    // A bucket in another region than the task answers with a redirect; follow it.
    followRegionRedirects: true,
    // Retries are the fetcher's own (per byte range, within MODEL_FETCH_TIMEOUT_SECONDS).
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true }),
      httpsAgent: new https.Agent({ keepAlive: true }),
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: IDLE_TIMEOUT_MS,
    }),
    ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    ...(region ? { region } : {}),
  };
  return new S3Client(options);
}

/** How long clean-up may take after SIGTERM before the fetcher exits regardless (ECS sends SIGKILL at 30 s). */
const STOP_GRACE_MS = 20_000;

/**
 * SIGTERM and SIGINT abort the download: requests in flight stop, what was written is removed,
 * and the fetcher exits 128 + the signal's number with one line.
 */
function abortOnSignals(): AbortSignal {
  const stop = new AbortController();
  for (const [name, number] of [['SIGTERM', 15], ['SIGINT', 2]] as const) {
    process.once(name, () => {
      stop.abort(new FetchError(`stopped by ${name} before the model was complete; nothing was left in MODEL_DIR`, 128 + number));
      setTimeout(() => process.exit(128 + number), STOP_GRACE_MS).unref();
    });
  }
  return stop.signal;
}

/**
 * Model fetcher: the task's init container. Downloads MODEL_URI into MODEL_DIR and exits 0
 * only when the complete model is in place. Any failure prints one line naming the object and
 * the cause, and exits 1 (download or verification), 2 (configuration) or 128 + n (signal n).
 */
async function main(): Promise<number> {
  // The SDK's multi-line notice about Node.js versions would break the one-line error contract;
  // the fetcher image runs a supported Node.js, so the notice only ever fires on a host run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const signal = abortOnSignals();
  let uri = escapeForLog(process.env.MODEL_URI ?? '(unset)');
  try {
    const config = loadConfig(process.env);
    uri = formatS3Uri(config.source.bucket, config.source.key);
    const client = s3Client(config);
    const s3 = {
      client,
      signer: new UrlSigner(client, (region) => s3Client(config, region)),
      http: new HttpPool({ connectTimeoutMs: CONNECT_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS }),
    };
    console.log(`model-fetcher: downloading ${uri} to ${config.modelDir} concurrency=${config.concurrency} part_mib=${config.partSize / 2 ** 20}`);
    const progress = new Progress((line) => console.log(line));
    progress.start();
    const summary = await fetchModel(config, s3, progress, signal).finally(() => {
      progress.stop();
      s3.http.close();
    });
    console.log(`model-fetcher: done: ${summary.files} file(s) ${progress.fields()} seconds=${progress.seconds.toFixed(2)} verified_by="${summary.verifiedBy}"`);
    return 0;
  } catch (err) {
    const where = err instanceof ObjectError ? formatS3Uri(err.bucket, err.key) : uri;
    const cause = describeCause(err instanceof ObjectError ? err.cause : err);
    const message = cause.startsWith('s3://') ? cause : `${where}: ${cause}`;
    // One line, whatever an error's text holds (keys are escaped where they are formatted).
    console.error(`model-fetcher: error: ${message.replace(/[\r\n]+/g, ' ')}`);
    return err instanceof FetchError ? err.exitCode : 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
