import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_FETCHER_BUNDLE } from '../../lib/functions/bundles';
import { run, RunResult } from '../../scripts/processes';
import { LocalS3 } from '../helpers/s3-server';

const FETCHER = MODEL_FETCHER_BUNDLE;
const BUCKET = 'models';

let s3: LocalS3;
let modelDir: string;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const MODEL = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));

/** Every file below `dir` (hidden ones too), as relative paths. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

function fetcher(env: Record<string, string>): Promise<RunResult> {
  return run(process.execPath, [FETCHER], {
    env: { PATH: process.env.PATH!, ...s3.env(), MODEL_DIR: modelDir, ...env },
    timeoutMs: 30_000,
  });
}

/** The fetcher's failure: exit code and exactly one line on stderr. */
function expectOneLineFailure(result: RunResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

beforeAll(async () => {
  await fs.access(FETCHER).catch(() => {
    throw new Error(`${FETCHER} is missing: run 'npm run build' first`);
  });
  s3 = await LocalS3.start();
  await s3.createBucket(BUCKET);
  await s3.put(BUCKET, 'single/model.joblib', MODEL);
  await s3.put(BUCKET, 'team/m1/model.joblib', 'm1-model');
  await s3.put(BUCKET, 'team/m1/meta/labels.json', '["a","b"]');
  await s3.put(BUCKET, 'team/m10/model.joblib', 'm10-model');
  await s3.put(BUCKET, 'broken.zip', 'this is not a zip archive');
});

afterAll(async () => {
  await s3?.stop();
});

beforeEach(async () => {
  modelDir = await fs.mkdtemp(path.join(os.tmpdir(), 'model-dir-'));
});

afterEach(async () => {
  await fs.rm(modelDir, { recursive: true, force: true });
});

test('a single object lands as MODEL_DIR/<basename>, byte for byte', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/single/model.joblib` });
  expect(result.code).toBe(0);
  expect(await listTree(modelDir)).toEqual(['model.joblib']);
  expect(await fs.readFile(path.join(modelDir, 'model.joblib'))).toEqual(MODEL);
  expect(result.stdout).toMatch(/done: 1 file\(s\)/);
});

test('a matching MODEL_SHA256 is accepted', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/single/model.joblib`, MODEL_SHA256: sha256(MODEL).toUpperCase() });
  expect(result.code).toBe(0);
  expect(sha256(await fs.readFile(path.join(modelDir, 'model.joblib')))).toBe(sha256(MODEL));
});

test('a SHA-256 mismatch fails with one line and leaves no file behind', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/single/model.joblib`, MODEL_SHA256: sha256('something else') });
  expectOneLineFailure(result, 1, /s3:\/\/models\/single\/model\.joblib: SHA-256 mismatch, expected [0-9a-f]{64} but got [0-9a-f]{64}/);
  expect(await listTree(modelDir)).toEqual([]);
});

test('a prefix lands as the tree below it, and team/m1/ does not pick up team/m10/', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/team/m1/` });
  expect(result.code).toBe(0);
  expect(await listTree(modelDir)).toEqual(['meta/labels.json', 'model.joblib']);
  expect(await fs.readFile(path.join(modelDir, 'model.joblib'), 'utf8')).toBe('m1-model');
});

test('a zip archive (a directory asset) is unpacked into MODEL_DIR', async () => {
  // A real zip made by the system's zip tool from a directory, as the CDK uploads directory assets.
  const src = await fs.mkdtemp(path.join(os.tmpdir(), 'zip-src-'));
  await fs.mkdir(path.join(src, 'nested'));
  await fs.writeFile(path.join(src, 'model.joblib'), MODEL);
  await fs.writeFile(path.join(src, 'nested', 'vocab.txt'), 'hello');
  const archive = `${src}-archive`;
  const zipped = await run('python3', ['-c', 'import shutil,sys; shutil.make_archive(sys.argv[1], "zip", sys.argv[2])', archive, src]);
  expect(zipped.code).toBe(0);
  await s3.put(BUCKET, 'asset.zip', await fs.readFile(`${archive}.zip`));
  await fs.rm(src, { recursive: true });
  await fs.rm(`${archive}.zip`);

  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/asset.zip`, MODEL_UNPACK: 'zip' });
  expect(result.code).toBe(0);
  expect(await listTree(modelDir)).toEqual(['model.joblib', 'nested/vocab.txt']);
  expect(await fs.readFile(path.join(modelDir, 'model.joblib'))).toEqual(MODEL);
});

test('a corrupt archive fails with one line and leaves MODEL_DIR empty', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/broken.zip`, MODEL_UNPACK: 'zip' });
  expectOneLineFailure(result, 1, /s3:\/\/models\/broken\.zip: the model archive is not a valid zip file/);
  expect(await listTree(modelDir)).toEqual([]);
});

test('a missing object fails with one line naming it', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/single/nope.joblib` });
  expectOneLineFailure(result, 1, /^model-fetcher: error: s3:\/\/models\/single\/nope\.joblib: NoSuchKey: the object does not exist$/);
  expect(await listTree(modelDir)).toEqual([]);
});

test('a missing bucket fails with one line naming it', async () => {
  const result = await fetcher({ MODEL_URI: 's3://no-such-bucket/model.joblib' });
  expectOneLineFailure(result, 1, /s3:\/\/no-such-bucket\/model\.joblib: NoSuchBucket: the bucket does not exist/);
  expect(await listTree(modelDir)).toEqual([]);
});

test('an empty prefix is an error, not an empty model', async () => {
  const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/team/none/` });
  expectOneLineFailure(result, 1, /s3:\/\/models\/team\/none\/: no objects under this prefix/);
  expect(await listTree(modelDir)).toEqual([]);
});

test.each([
  ['not-a-uri', /MODEL_URI must look like s3:\/\/bucket\/key/],
  ['s3://bucket-only', /MODEL_URI must look like s3:\/\/bucket\/key/],
  ['s3://Bad_Bucket/key', /MODEL_URI names an invalid bucket 'Bad_Bucket'/],
])('a malformed MODEL_URI %s is a configuration error (exit 2)', async (uri, message) => {
  expectOneLineFailure(await fetcher({ MODEL_URI: uri }), 2, message);
});

test('configuration errors: MODEL_SHA256 on a prefix, a bad MODEL_SHA256, no MODEL_URI', async () => {
  expectOneLineFailure(await fetcher({ MODEL_URI: `s3://${BUCKET}/team/m1/`, MODEL_SHA256: sha256('x') }), 2, /MODEL_SHA256 applies to a single object/);
  expectOneLineFailure(await fetcher({ MODEL_URI: `s3://${BUCKET}/single/model.joblib`, MODEL_SHA256: 'abc' }), 2, /MODEL_SHA256 must be 64 hex digits/);
  expectOneLineFailure(await fetcher({}), 2, /MODEL_URI is not set/);
});

test('an unreachable endpoint is retried until MODEL_FETCH_TIMEOUT_SECONDS, then fails with one line and the cause', async () => {
  const started = Date.now();
  const result = await run(process.execPath, [FETCHER], {
    env: {
      PATH: process.env.PATH!, ...s3.env(), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1', MODEL_FETCH_TIMEOUT_SECONDS: '2',
      MODEL_DIR: modelDir, MODEL_URI: `s3://${BUCKET}/single/model.joblib`,
    },
    timeoutMs: 30_000,
  });
  const elapsed = Date.now() - started;
  expectOneLineFailure(result, 1, /s3:\/\/models\/single\/model\.joblib: HEAD: gave up after \d+ attempt\(s\) in 2 s \(MODEL_FETCH_TIMEOUT_SECONDS\); last error: .*ECONNREFUSED/);
  expect(elapsed).toBeGreaterThan(1000);
  expect(elapsed).toBeLessThan(6000);
  expect(await listTree(modelDir)).toEqual([]);
});
