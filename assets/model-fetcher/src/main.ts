import contract from '../../model-server/model_server/contract.json';
import { loadConfig } from './config';
import { describeCause, FetchError } from './errors';
import { fetchModel, ObjectError } from './fetch-model';
import { Progress } from './progress';
import { createS3Access } from './s3-access';
import { escapeForLog, formatS3Uri } from './s3-location';

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
    const s3 = createS3Access(config.endpoint);
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
    // One line, whatever an error's text holds (keys are escaped where they are formatted); and on
    // stdout the structured line the start-failure alarm counts (the contract's own field).
    const line = message.replace(/[\r\n]+/g, ' ');
    console.error(`model-fetcher: error: ${line}`);
    console.log(JSON.stringify({ [contract.startFailure.field]: contract.startFailure.value, container: 'model-fetcher', reason: line }));
    return err instanceof FetchError ? err.exitCode : 1;
  }
}

void main().then((code) => {
  process.exitCode = code;
});
