import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_FETCHER_BUNDLE } from '../../lib/functions/bundles';
import { run, RunResult } from '../../scripts/processes';
import { BUCKET_REGION, Fault, FaultProxy } from '../helpers/fault-proxy';
import { LocalS3 } from '../helpers/s3-server';
import { TlsProxy } from '../helpers/tls-proxy';

/**
 * The fetcher through faults (503s, bodies cut half-way, objects overwritten mid-download, a
 * bucket in another region) and over TLS.
 */
const FETCHER = MODEL_FETCHER_BUNDLE;
const BUCKET = 'models';
const BIG = randomBytes(24 * 2 ** 20);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let s3: LocalS3;
let modelDir: string;

beforeAll(async () => {
  s3 = await LocalS3.start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'big/model.bin', BIG);
}, 60_000);

afterAll(async () => {
  await s3?.stop();
});

beforeEach(async () => {
  modelDir = await fs.mkdtemp(path.join(os.tmpdir(), 'faults-'));
});

afterEach(async () => {
  await fs.rm(modelDir, { recursive: true, force: true });
});

function fetchThrough(endpoint: string, env: Record<string, string>): Promise<RunResult> {
  return run(process.execPath, [FETCHER], {
    env: { PATH: process.env.PATH!, ...s3.env(), AWS_ENDPOINT_URL_S3: endpoint, MODEL_DIR: modelDir, MODEL_FETCH_PART_MIB: '1', ...env },
    timeoutMs: 60_000,
  });
}

test('503 SlowDown and bodies cut half-way on a schedule: the model is byte-identical', async () => {
  const proxy = await FaultProxy.start(s3.endpoint, (n) => (n % 3 === 0 ? 'slowdown' : n % 4 === 1 ? 'cut' : 'pass'));
  try {
    const result = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/big/model.bin`, MODEL_SHA256: sha256(BIG) });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(proxy.injected.slowdown).toBeGreaterThan(3);
    expect(proxy.injected.cut).toBeGreaterThan(3);
    const got = await fs.readFile(path.join(modelDir, 'model.bin'));
    expect(got.length).toBe(BIG.length);
    expect(sha256(got)).toBe(sha256(BIG));
    expect(result.stdout).toMatch(/done: 1 file\(s\) bytes=25165824 total=25165824 .*verified_by="MODEL_SHA256"/);
    expect(await fs.readdir(modelDir)).toEqual(['model.bin']);
  } finally {
    await proxy.stop();
  }
}, 120_000);

test('a download that is slow but never fails ends at MODEL_FETCH_TIMEOUT_SECONDS, with one line and nothing left', async () => {
  const proxy = await FaultProxy.start(s3.endpoint, () => 'trickle');
  try {
    const started = Date.now();
    const result = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/big/model.bin`, MODEL_FETCH_TIMEOUT_SECONDS: '3' });
    const elapsed = Date.now() - started;
    expect(proxy.injected.trickle).toBeGreaterThan(0);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/s3:\/\/models\/big\/model\.bin: the model did not arrive within 3 s \(MODEL_FETCH_TIMEOUT_SECONDS\); nothing was left in MODEL_DIR/);
    expect(elapsed).toBeLessThan(8000);
    expect(await fs.readdir(modelDir)).toEqual([]);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test('a server that never recovers: the fetcher gives up within MODEL_FETCH_TIMEOUT_SECONDS, with one line and nothing left', async () => {
  const proxy = await FaultProxy.start(s3.endpoint, () => 'slowdown');
  try {
    const started = Date.now();
    const result = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/big/model.bin`, MODEL_FETCH_TIMEOUT_SECONDS: '3' });
    const elapsed = Date.now() - started;
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/s3:\/\/models\/big\/model\.bin: bytes \d+-\d+: gave up after \d+ attempt\(s\) in 3 s \(MODEL_FETCH_TIMEOUT_SECONDS\); last error: SlowDown/);
    expect(elapsed).toBeLessThan(8000);
    expect(await fs.readdir(modelDir)).toEqual([]);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test('an object overwritten mid-download is an error, never a mix of two versions', async () => {
  await s3.put(BUCKET, 'moving/model.bin', BIG);
  const proxy = await FaultProxy.start(s3.endpoint, async (n): Promise<Fault> => {
    // Before the third range is answered, a new version of the object replaces the old one.
    if (n === 3) await s3.put(BUCKET, 'moving/model.bin', Buffer.alloc(BIG.length, 7));
    return 'pass';
  });
  try {
    const result = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/moving/model.bin`, MODEL_FETCH_CONCURRENCY: '2' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^model-fetcher: error: s3:\/\/models\/moving\/model\.bin: PreconditionFailed: the object changed while it was being downloaded$/);
    expect(await fs.readdir(modelDir)).toEqual([]);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test('over HTTPS, with the certificate verified: the model is byte-identical; an untrusted certificate fails with one line', async () => {
  const proxy = await TlsProxy.start(s3.endpoint);
  try {
    const trusted = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/big/model.bin`, MODEL_SHA256: sha256(BIG), NODE_EXTRA_CA_CERTS: proxy.caFile });
    expect(trusted.stderr).toBe('');
    expect(trusted.code).toBe(0);
    expect(sha256(await fs.readFile(path.join(modelDir, 'model.bin')))).toBe(sha256(BIG));
    await fs.rm(path.join(modelDir, 'model.bin'));

    const untrusted = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/big/model.bin` });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr.trim().split('\n')).toHaveLength(1);
    expect(untrusted.stderr).toMatch(/^model-fetcher: error: s3:\/\/models\/big\/model\.bin: .*self[- ]signed certificate/);
    expect(await fs.readdir(modelDir)).toEqual([]);
  } finally {
    await proxy.stop();
  }
}, 60_000);

test("a bucket in another region: S3's redirect names it, and the GETs are signed for it", async () => {
  const regionOf = (url: string) => /X-Amz-Credential=[^&]*%2F(\d{8})%2F([a-z0-9-]+)%2Fs3%2F/.exec(url)?.[2];
  const signedFor: string[] = [];
  const proxy = await FaultProxy.start(s3.endpoint, (_n, req) => {
    signedFor.push(regionOf(req.url!) ?? 'unsigned');
    return regionOf(req.url!) === BUCKET_REGION ? 'pass' : 'wrong-region';
  });
  try {
    const result = await fetchThrough(proxy.endpoint, { MODEL_URI: `s3://${BUCKET}/big/model.bin`, MODEL_SHA256: sha256(BIG), AWS_REGION: 'us-east-1' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(proxy.injected['wrong-region']).toBeGreaterThanOrEqual(1);
    // Once redirected, every GET (24 ranges of 1 MiB) is signed for the bucket's region.
    expect(signedFor.filter((r) => r === BUCKET_REGION)).toHaveLength(24);
    expect(signedFor.every((r) => r === 'us-east-1' || r === BUCKET_REGION)).toBe(true);
    expect(sha256(await fs.readFile(path.join(modelDir, 'model.bin')))).toBe(sha256(BIG));
  } finally {
    await proxy.stop();
  }
}, 60_000);

test('keys with spaces, unicode and + download correctly', async () => {
  const keys = ['odd names/model v1+final.joblib', 'odd names/modèle-ü-日本.bin', 'odd names/a+b=c&d.txt'];
  for (const [i, key] of keys.entries()) await s3.put(BUCKET, key, `content ${i}`);
  const result = await fetchThrough(s3.endpoint, { MODEL_URI: `s3://${BUCKET}/odd names/` });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect((await fs.readdir(modelDir)).sort()).toEqual(['a+b=c&d.txt', 'model v1+final.joblib', 'modèle-ü-日本.bin'].sort());
  expect(await fs.readFile(path.join(modelDir, 'modèle-ü-日本.bin'), 'utf8')).toBe('content 1');
  const single = await fetchThrough(s3.endpoint, { MODEL_URI: `s3://${BUCKET}/odd names/model v1+final.joblib` });
  expect(single.code).toBe(0);
}, 60_000);

test('a prefix of more than 1,000 objects is listed past the first page', async () => {
  const count = 1005;
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => s3.put(BUCKET, `many/part-${String(i + j).padStart(5, '0')}.bin`, `p${i + j}`)));
  }
  const result = await fetchThrough(s3.endpoint, { MODEL_URI: `s3://${BUCKET}/many/` });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const files = await fs.readdir(modelDir);
  expect(files).toHaveLength(count);
  expect(await fs.readFile(path.join(modelDir, 'part-01004.bin'), 'utf8')).toBe('p1004');
}, 180_000);
