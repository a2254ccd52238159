import * as http from 'node:http';
import * as https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { loadConfig } from './config';
import { describeCause, FetchError } from './errors';
import { fetchModel, ObjectError } from './fetch-model';
import { Progress } from './progress';
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
    const agentOptions = { keepAlive: true, maxSockets: config.concurrency + 4 };
    const client = new S3Client({
      // A bucket in another region than the task answers with a redirect; follow it.
      followRegionRedirects: true,
      // Retries are the fetcher's own (per byte range, within MODEL_FETCH_TIMEOUT_SECONDS).
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
        connectionTimeout: 5000,
        requestTimeout: 30000,
      }),
      ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    });
    console.log(`model-fetcher: downloading ${uri} to ${config.modelDir} concurrency=${config.concurrency} part_mib=${config.partSize / 2 ** 20}`);
    const progress = new Progress((line) => console.log(line));
    progress.start();
    const summary = await fetchModel(config, client, progress).finally(() => progress.stop());
    console.log(`model-fetcher: done: ${summary.files} file(s) ${progress.fields()} seconds=${progress.seconds.toFixed(2)} verified_by="${summary.verifiedBy}"`);
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
