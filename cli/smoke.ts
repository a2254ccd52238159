import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError, oneLine, UsageError } from './errors';
import { positiveSeconds } from './options';

/** The most features a default payload (two rows of zeros) is made for. */
const MAX_DEFAULT_FEATURES = 100_000;

export const SMOKE_USAGE = `Usage:
  cdk-model-serving smoke --url URL [options]
  cdk-model-serving smoke --outputs-file cdk-outputs.json [--stack NAME] [--output-key KEY] [options]

Proves a deployed endpoint answers: waits for GET /health to answer 200, sends one POST /predict
and checks the shape of the answer. A 503 with Retry-After (a task shedding load) is retried after
the wait it asks for, within --timeout. The outputs file is what 'cdk deploy --outputs-file' writes;
the endpoint is the stack output whose key contains 'EndpointUrl' unless --output-key names one.

Options:
  --health-path PATH       (default /health)
  --timeout SECONDS        how long to wait for /health, and for a 503'd /predict (default 600)
  --interval SECONDS       between health polls (default 5)
  --request-timeout SECONDS  per request (default 10)
  --payload JSON           the /predict body (default: two all-zero rows of the width /health reports)
  --payload-file FILE      the /predict body, from a file`;

export async function smoke(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'url': { type: 'string' },
      'outputs-file': { type: 'string' },
      'stack': { type: 'string' },
      'output-key': { type: 'string' },
      'health-path': { type: 'string', default: '/health' },
      'timeout': { type: 'string', default: '600' },
      'interval': { type: 'string', default: '5' },
      'request-timeout': { type: 'string', default: '10' },
      'payload': { type: 'string' },
      'payload-file': { type: 'string' },
    },
    strict: true,
  });
  const base = endpoint(values).replace(/\/+$/, '');
  const timeout = positiveSeconds('--timeout', values.timeout!);
  const interval = positiveSeconds('--interval', values.interval!);
  const requestTimeout = positiveSeconds('--request-timeout', values['request-timeout']!);
  if (values.payload && values['payload-file']) throw new UsageError('give either --payload or --payload-file, not both');
  const given = values['payload-file'] ? readPayloadFile(values['payload-file']) : values.payload;
  let request = given === undefined ? undefined : parsePayload(given, values['payload-file'] ?? '--payload');

  const started = Date.now();
  const health = await waitForHealth(`${base}${values['health-path']}`, { timeout, interval, requestTimeout });
  const healthySeconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`${base}${values['health-path']} answered 200 after ${healthySeconds} s\n`);

  if (request === undefined) {
    const width = health?.n_features;
    if (!Number.isInteger(width) || width < 1) {
      throw new CliError(`${values['health-path']} does not say how many features the model takes (n_features): give --payload '{"instances": [[...]]}'`);
    }
    // The endpoint's word decides how much memory this takes: bounded, beyond any tabular model.
    if (width > MAX_DEFAULT_FEATURES) {
      throw new CliError(`${values['health-path']} says the model takes ${width} features, more than the ${MAX_DEFAULT_FEATURES} a default payload is made for: ` +
        'give --payload \'{"instances": [[...]]}\'');
    }
    request = { instances: [Array(width).fill(0), Array(width).fill(0)] };
  }
  const payload = given ?? JSON.stringify(request);
  const deadline = started + timeout * 1000;
  let sent: number;
  let response: Response;
  let text: string;
  for (;;) {
    sent = Date.now();
    try {
      response = await fetch(`${base}/predict`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: payload, signal: AbortSignal.timeout(requestTimeout * 1000),
      });
    } catch (err: any) {
      throw new CliError(`POST ${base}/predict failed: ${err?.cause?.code ?? err?.name ?? ''} ${err?.cause?.message ?? err?.message ?? err}`.trim());
    }
    text = await response.text();
    // A 503 with Retry-After is a busy (load-shedding) or waking endpoint: retry after the wait
    // it asks for, within --timeout.
    const wait = response.status === 503 ? retryAfterSeconds(response.headers.get('retry-after')) : undefined;
    if (wait === undefined || Date.now() + wait * 1000 >= deadline) break;
    process.stderr.write(`POST ${base}/predict answered 503 (${oneLine(text, 120)}); retrying after ${wait} s\n`);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
  const ms = Date.now() - sent;
  if (response.status !== 200) throw new CliError(`POST ${base}/predict answered HTTP ${response.status}: ${oneLine(text, 300)}`);
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new CliError(`POST ${base}/predict answered 200 with a body that is not JSON: ${oneLine(text, 300)}`);
  }
  const what = checkShape(request, answer);
  process.stdout.write(`smoke test passed: ${base} healthy after ${healthySeconds} s; POST /predict answered ${what} in ${ms} ms\n`);
  return 0;
}

/** Retry-After as seconds (its delay-seconds form, at most 60), or undefined when absent or an HTTP date. */
function retryAfterSeconds(header: string | null): number | undefined {
  if (header === null || !/^\d{1,9}$/.test(header.trim())) return undefined;
  return Math.min(60, Number(header.trim()));
}

/** The endpoint URL: given, or read from `cdk deploy --outputs-file`. */
function endpoint(values: { url?: string; 'outputs-file'?: string; stack?: string; 'output-key'?: string }): string {
  if (values.url) {
    if (values['outputs-file']) throw new UsageError('give either --url or --outputs-file, not both');
    if (!/^https?:\/\//.test(values.url)) throw new UsageError(`--url must start with http:// or https://, got '${values.url}'`);
    return values.url;
  }
  const file = values['outputs-file'];
  if (!file) throw new UsageError('give --url, or --outputs-file with the file that cdk deploy --outputs-file wrote');
  let outputs: Record<string, Record<string, string>>;
  try {
    outputs = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err: any) {
    throw new CliError(`cannot read the stack outputs in ${file}: ${err.message}`);
  }
  const stacks = values.stack ? [values.stack] : Object.keys(outputs);
  if (values.stack && !outputs[values.stack]) {
    throw new CliError(`${file} has no outputs for stack '${values.stack}'; it has: ${Object.keys(outputs).join(', ') || 'none'}`);
  }
  const found = stacks.flatMap((stack) => Object.entries(outputs[stack] ?? {})
    .filter(([key]) => (values['output-key'] ? key === values['output-key'] : key.includes('EndpointUrl')))
    .map(([key, value]) => ({ name: `${stack}.${key}`, value })));
  if (found.length === 0) {
    throw new CliError(`${file} has no ${values['output-key'] ? `output '${values['output-key']}'` : "output whose key contains 'EndpointUrl'"}${values.stack ? ` in stack '${values.stack}'` : ''}`);
  }
  if (found.length > 1) {
    throw new UsageError(`${file} has several endpoints (${found.map((f) => f.name).join(', ')}): choose one with --stack or --output-key`);
  }
  return found[0].value;
}

function readPayloadFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err: any) {
    throw new CliError(`cannot read --payload-file ${file}: ${err.message}`);
  }
}

function parsePayload(payload: string, where: string): any {
  try {
    const parsed = JSON.parse(payload);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw new UsageError(`${where} must be a JSON object such as {"instances": [[5.1, 3.5, 1.4, 0.2]]}`);
}

/** Polls the health path until it answers 200, within the timeout; returns its JSON body, if any. */
async function waitForHealth(url: string, o: { timeout: number; interval: number; requestTimeout: number }): Promise<any> {
  const deadline = Date.now() + o.timeout * 1000;
  let last: string;
  for (;;) {
    const left = deadline - Date.now();
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(1, Math.min(o.requestTimeout * 1000, left))) });
      const text = await response.text();
      if (response.status === 200) {
        try {
          return JSON.parse(text);
        } catch {
          return undefined;
        }
      }
      last = `HTTP ${response.status} ${oneLine(text, 200)}`;
    } catch (err: any) {
      last = `${err?.cause?.code ?? err?.name ?? 'error'}: ${err?.cause?.message ?? err?.message ?? err}`;
    }
    if (Date.now() + o.interval * 1000 >= deadline) {
      throw new CliError(`${url} did not answer 200 within ${o.timeout} s (last: ${oneLine(last, 300)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, o.interval * 1000));
  }
}

/**
 * Checks the answer against the built-in server's contract: `{"instances": [...]}` gets
 * `predictions` (and optionally `probabilities`) with one entry per row; `{"features": [...]}`
 * gets `prediction` (and optionally `probability`). Returns what it found, for the report.
 */
function checkShape(request: any, answer: any): string {
  const fail = (why: string) => {
    throw new CliError(`POST /predict answered 200 but ${why}: ${oneLine(JSON.stringify(answer), 300)}`);
  };
  if (!answer || typeof answer !== 'object' || Array.isArray(answer)) fail('the answer is not a JSON object');
  const isLabel = (v: unknown) => v !== null && v !== undefined && (typeof v !== 'number' || Number.isFinite(v));
  const isDistribution = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'number' && Number.isFinite(p));
  if (Array.isArray(request.instances)) {
    const rows = request.instances.length;
    if (!Array.isArray(answer.predictions)) fail("it has no 'predictions' list");
    if (answer.predictions.length !== rows) fail(`'predictions' has ${answer.predictions.length} entries for ${rows} rows`);
    if (!answer.predictions.every(isLabel)) fail("'predictions' has an empty or non-finite entry");
    if (answer.probabilities !== undefined) {
      if (!Array.isArray(answer.probabilities) || answer.probabilities.length !== rows || !answer.probabilities.every(isDistribution)) {
        fail(`'probabilities' is not ${rows} lists of numbers`);
      }
    }
    return `${rows} prediction(s)`;
  }
  if (request.features !== undefined) {
    if (!isLabel(answer.prediction)) fail("it has no 'prediction'");
    if (answer.probability !== undefined && !isDistribution(answer.probability)) fail("'probability' is not a list of numbers");
    return '1 prediction';
  }
  if (!('prediction' in answer) && !('predictions' in answer)) fail("it has neither 'prediction' nor 'predictions'");
  return 'a prediction';
}
