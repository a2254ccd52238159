import { S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from './config';
import { describeCause, FetchError } from './errors';
import { fetchModel, ObjectError } from './fetch-model';
import { formatS3Uri } from './s3-location';

/**
 * Model fetcher: the task's init container. Downloads MODEL_URI into MODEL_DIR and exits 0
 * only when the complete model is in place. Any failure prints one line naming the object and
 * the cause, and exits 1 (download or verification) or 2 (configuration).
 */
async function main(): Promise<number> {
  // The SDK's multi-line notice about Node.js versions would break the one-line error contract;
  // the fetcher image runs a supported Node.js, so the notice only ever fires on a host run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let uri = process.env.MODEL_URI ?? '(unset)';
  try {
    const config = loadConfig(process.env);
    uri = formatS3Uri(config.source.bucket, config.source.key);
    const client = new S3Client({
      // A bucket in another region than the task answers with a redirect; follow it.
      followRegionRedirects: true,
      ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    });
    const started = process.hrtime.bigint();
    console.log(`model-fetcher: downloading ${uri} to ${config.modelDir}`);
    const summary = await fetchModel(config, client);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const mib = summary.bytes / 2 ** 20;
    console.log(
      `model-fetcher: done: ${summary.files} file(s), ${mib.toFixed(1)} MiB in ${seconds.toFixed(2)} s ` +
        `(${(mib / Math.max(seconds, 1e-3)).toFixed(1)} MiB/s)`,
    );
    return 0;
  } catch (err) {
    const where = err instanceof ObjectError ? formatS3Uri(err.bucket, err.key) : uri;
    const cause = describeCause(err instanceof ObjectError ? err.cause : err);
    const message = cause.startsWith('s3://') ? cause : `${where}: ${cause}`;
    console.error(`model-fetcher: error: ${message}`);
    return err instanceof FetchError ? err.exitCode : 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
