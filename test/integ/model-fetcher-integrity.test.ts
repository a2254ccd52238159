import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_FETCHER_BUNDLE } from '../../lib/functions/bundles';
import { Background, run, RunResult } from '../../scripts/processes';
import { modelTask } from '../../scripts/task-containers';
import { FaultProxy } from '../helpers/fault-proxy';
import { S3RewriteProxy } from '../helpers/s3-rewrite-proxy';
import { LocalS3 } from '../helpers/s3-server';

/**
 * What the fetcher refuses, and what it leaves behind when it does (nothing): multi-file models
 * checked file by file (MODEL_MANIFEST, or S3's full-object checksums), keys that do not name what
 * they seem to, listings that stray from the prefix, archives past their bounds or the deadline,
 * signals, the leftovers of a killed run, and keys that try to forge log lines.
 */
const FETCHER = MODEL_FETCHER_BUNDLE;
const BUCKET = 'models';
const FILES: Record<string, string> = { 'model.joblib': 'the model bytes', 'meta/labels.json': '["setosa","versicolor","virginica"]' };

let s3: LocalS3;
let work: string;
let modelDir: string;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const MANIFEST = JSON.stringify(Object.fromEntries(Object.entries(FILES).map(([f, c]) => [f, sha256(c)])));

async function listTree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

function fetcherEnv(env: Record<string, string>, endpoint?: string): Record<string, string> {
  return { PATH: process.env.PATH!, ...s3.env(), ...(endpoint ? { AWS_ENDPOINT_URL_S3: endpoint } : {}), MODEL_DIR: modelDir, ...env };
}

function fetcher(env: Record<string, string>, endpoint?: string): Promise<RunResult> {
  return run(process.execPath, [FETCHER], { env: fetcherEnv(env, endpoint), timeoutMs: 60_000 });
}

function expectOneLineFailure(result: RunResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/**
 * A zip of `files` (path -> content), written by Python's zipfile. With `declare`, every entry's
 * central directory record claims that many bytes (yauzl would refuse the lie on extraction; the
 * fetcher must refuse the archive before that, from the declared total).
 */
function zip(file: string, files: Record<string, string>, declare?: number): Buffer {
  execFileSync('python3', ['-c', `
import json, struct, sys, zipfile
out, files, declare = sys.argv[1], json.load(sys.stdin), int(sys.argv[2])
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name, content in files.items():
        z.writestr(name, content)
if declare:
    data = bytearray(open(out, "rb").read())
    at = data.find(b"PK\\x01\\x02")
    while at >= 0:
        struct.pack_into("<I", data, at + 24, declare)   # the record's uncompressed size
        at = data.find(b"PK\\x01\\x02", at + 4)
    open(out, "wb").write(data)
`, file, String(declare ?? 0)], { input: JSON.stringify(files) });
  return readFileSync(file);
}

beforeAll(async () => {
  await fs.access(FETCHER).catch(() => {
    throw new Error(`${FETCHER} is missing: run 'npm run build' first`);
  });
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'fetcher-integrity-'));
  s3 = await LocalS3.start();
  await s3.createBucket(BUCKET);
  for (const [f, c] of Object.entries(FILES)) await s3.put(BUCKET, `prefix/${f}`, c);
  await s3.put(BUCKET, 'asset.zip', zip(path.join(work, 'a.zip'), FILES));
  await s3.put(BUCKET, 'tampered.zip', zip(path.join(work, 't.zip'), { ...FILES, 'model.joblib': 'other bytes' }));
  await s3.put(BUCKET, 'extra.zip', zip(path.join(work, 'e.zip'), { ...FILES, 'evil.pkl': 'runs code' }));
  await s3.put(BUCKET, 'missing.zip', zip(path.join(work, 'm.zip'), { 'model.joblib': FILES['model.joblib'] }));
  await s3.put(BUCKET, 'many.zip', zip(path.join(work, 'n.zip'), Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}.txt`, `${i}`]))));
  // 100 entries that each claim just under 4 GiB: 400 GiB, more than any disk here has free.
  await s3.put(BUCKET, 'huge.zip', zip(path.join(work, 'h.zip'), Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`part${i}.bin`, 'small'])), 0xfffffffe));
  await s3.put(BUCKET, 'big/model.bin', Buffer.alloc(64 * 2 ** 20, 7));
}, 120_000);

afterAll(async () => {
  await s3?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

beforeEach(async () => {
  modelDir = await fs.mkdtemp(path.join(work, 'model-dir-'));
});

describe('a multi-file model is checked file by file', () => {
  test('an archive and a prefix with a matching MODEL_MANIFEST land whole, verified by it', async () => {
    for (const uri of [`s3://${BUCKET}/asset.zip`, `s3://${BUCKET}/prefix/`]) {
      modelDir = await fs.mkdtemp(path.join(work, 'model-dir-'));
      const result = await fetcher({ MODEL_URI: uri, MODEL_MANIFEST: MANIFEST, ...(uri.endsWith('.zip') ? { MODEL_UNPACK: 'zip' } : {}) });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(await listTree(modelDir)).toEqual(['meta/labels.json', 'model.joblib']);
      expect(result.stdout).toMatch(/verified_by="MODEL_MANIFEST \(the SHA-256 of each of 2 files\)"/);
    }
  });

  test.each([
    ['a file whose bytes were replaced', 'tampered.zip', /asset|tampered\.zip: 'model\.joblib' has SHA-256 [0-9a-f]{64}, but MODEL_MANIFEST says [0-9a-f]{64}$/],
    ['a file the manifest does not name', 'extra.zip', /extra\.zip: the model has 'evil\.pkl', which MODEL_MANIFEST does not name$/],
    ['a file the manifest names but the archive lacks', 'missing.zip', /missing\.zip: MODEL_MANIFEST names 'meta\/labels\.json', which the model does not have$/],
  ])('an archive with %s is refused, and nothing is left', async (_name, key, pattern) => {
    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/${key}`, MODEL_UNPACK: 'zip', MODEL_MANIFEST: MANIFEST });
    expectOneLineFailure(result, 1, pattern);
    expect(await listTree(modelDir)).toEqual([]);
    expect(await fs.readdir(modelDir)).toEqual([]);
  });

  test('the manifest a directory asset gets at synth is the one the fetcher checks: the asset passes, a tampered copy does not', async () => {
    const dir = await fs.mkdtemp(path.join(work, 'asset-'));
    for (const [f, c] of Object.entries(FILES)) {
      await fs.mkdir(path.dirname(path.join(dir, f)), { recursive: true });
      await fs.writeFile(path.join(dir, f), c);
    }
    const { fetcher: spec } = modelTask(`s3://${BUCKET}/unused.joblib`, { modelPath: dir });
    const manifest = spec.environment.MODEL_MANIFEST;
    expect(JSON.parse(manifest)).toEqual(JSON.parse(MANIFEST));
    const ok = await fetcher({ MODEL_URI: `s3://${BUCKET}/asset.zip`, MODEL_UNPACK: 'zip', MODEL_MANIFEST: manifest });
    expect(ok.code).toBe(0);
    modelDir = await fs.mkdtemp(path.join(work, 'model-dir-'));
    const tampered = await fetcher({ MODEL_URI: `s3://${BUCKET}/tampered.zip`, MODEL_UNPACK: 'zip', MODEL_MANIFEST: manifest });
    expectOneLineFailure(tampered, 1, /'model\.joblib' has SHA-256 [0-9a-f]{64}, but MODEL_MANIFEST says/);
  });

  test('a prefix whose objects have S3 full-object SHA-256 checksums is checked against them', async () => {
    const checksums = (wrong: boolean) => ({
      listing: (xml: string) => xml.replace(/<\/Size>/g, '</Size><ChecksumAlgorithm>SHA256</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>'),
      headHeaders: (key: string) => {
        const content = FILES[key.replace(/^prefix\//, '')];
        const digest = createHash('sha256').update(wrong && key.endsWith('labels.json') ? 'not these bytes' : content).digest('base64');
        return { 'x-amz-checksum-sha256': digest, 'x-amz-checksum-type': 'FULL_OBJECT' };
      },
    });
    const right = await S3RewriteProxy.start(s3.endpoint, checksums(false));
    try {
      const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/prefix/` }, right.endpoint);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/verified_by="S3's full-object SHA-256 of each object"/);
    } finally {
      await right.stop();
    }
    modelDir = await fs.mkdtemp(path.join(work, 'model-dir-'));
    const wrong = await S3RewriteProxy.start(s3.endpoint, checksums(true));
    try {
      const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/prefix/` }, wrong.endpoint);
      expectOneLineFailure(result, 1, /s3:\/\/models\/prefix\/meta\/labels\.json: SHA-256 mismatch, expected [0-9a-f]{64} but got [0-9a-f]{64}$/);
      expect(await fs.readdir(modelDir)).toEqual([]);
    } finally {
      await wrong.stop();
    }
  });

  test('without checksums or a manifest, a prefix is checked by size (and says so)', async () => {
    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/prefix/` });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/verified_by="size of each object"/);
  });

  test.each([
    ['on a single object', { MODEL_URI: `s3://${BUCKET}/prefix/model.joblib`, MODEL_MANIFEST: MANIFEST }, /MODEL_MANIFEST applies to a prefix or an archive; a single object is checked with MODEL_SHA256/],
    ['that is not JSON', { MODEL_URI: `s3://${BUCKET}/prefix/`, MODEL_MANIFEST: '{model.joblib' }, /MODEL_MANIFEST must be a JSON object/],
    ['that names a path above MODEL_DIR', { MODEL_URI: `s3://${BUCKET}/prefix/`, MODEL_MANIFEST: JSON.stringify({ '../x': 'a'.repeat(64) }) }, /MODEL_MANIFEST names '\.\.\/x', which is not a relative path below MODEL_DIR/],
    ['with a bad digest', { MODEL_URI: `s3://${BUCKET}/prefix/`, MODEL_MANIFEST: JSON.stringify({ x: 'abc' }) }, /MODEL_MANIFEST gives 'x' a SHA-256 that is not 64 lowercase hex digits/],
  ])('a MODEL_MANIFEST %s is a configuration error', async (_name, env, pattern) => {
    expectOneLineFailure(await fetcher(env), 2, pattern);
  });
});

describe('keys, listings and archives that would put something else in place', () => {
  test('a key with a ".." segment is refused before any request, and nothing is written above MODEL_DIR', async () => {
    const nested = path.join(modelDir, 'models');
    const result = await run(process.execPath, [FETCHER], { env: { ...fetcherEnv({ MODEL_URI: `s3://${BUCKET}/prefix/..`, MODEL_DIR: nested }) }, timeoutMs: 30_000 });
    expectOneLineFailure(result, 2, /MODEL_URI's key 'prefix\/\.\.' has an empty, '\.' or '\.\.' path segment: name the object or prefix exactly$/);
    expect(await fs.readdir(modelDir)).toEqual([]);
  });

  test.each(['a//b.joblib', 'a/./b.joblib', 'a/../b.joblib'])('the key %s is refused at parse time', async (key) => {
    expectOneLineFailure(await fetcher({ MODEL_URI: `s3://${BUCKET}/${key}` }), 2, /has an empty, '\.' or '\.\.' path segment/);
  });

  test('a listing that returns a key outside the prefix is refused, not landed under a clipped name', async () => {
    const proxy = await S3RewriteProxy.start(s3.endpoint, {
      listing: (xml) => xml.replace('</ListBucketResult>', '<Contents><Key>other/secret</Key><Size>6</Size><ETag>"0"</ETag></Contents></ListBucketResult>'),
    });
    try {
      const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/prefix/` }, proxy.endpoint);
      expectOneLineFailure(result, 1, /s3:\/\/models\/prefix\/: the listing returned s3:\/\/models\/other\/secret, which is not below the prefix$/);
      expect(await fs.readdir(modelDir)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  test('the archive is downloaded beside the directory it unpacks into, so none of its entries can collide with it', async () => {
    // The archive once lay inside its own extraction directory as .archive.zip: an entry of that name failed.
    await s3.put(BUCKET, 'collides.zip', zip(path.join(work, 'c.zip'), { '.archive.zip': 'an entry', 'model.joblib': 'the model' }));
    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/collides.zip`, MODEL_UNPACK: 'zip' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await listTree(modelDir)).toEqual(['.archive.zip', 'model.joblib']);
    expect(await fs.readFile(path.join(modelDir, '.archive.zip'), 'utf8')).toBe('an entry');
  });

  test('an archive with more entries than MODEL_MAX_FILES is refused', async () => {
    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/many.zip`, MODEL_UNPACK: 'zip', MODEL_MAX_FILES: '10' });
    expectOneLineFailure(result, 1, /many\.zip: the model archive has 50 entries; at most 10 are allowed \(MODEL_MAX_FILES\)$/);
    expect(await fs.readdir(modelDir)).toEqual([]);
  });

  test('an archive that declares more bytes than the volume has free is refused before anything is unpacked', async () => {
    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/huge.zip`, MODEL_UNPACK: 'zip' });
    expectOneLineFailure(result, 1, /huge\.zip: the model archive unpacks to 429496729400 bytes, but the model volume has \d+ bytes free$/);
    expect(await fs.readdir(modelDir)).toEqual([]);
  });

  test('unpacking runs under the download\'s deadline: 20,000 entries against 1 s', async () => {
    const entries = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`d${i % 100}/f${i}.txt`, 'x']));
    await s3.put(BUCKET, 'slow.zip', zip(path.join(work, 's.zip'), entries));
    const started = Date.now();
    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/slow.zip`, MODEL_UNPACK: 'zip', MODEL_MAX_FILES: '30000', MODEL_FETCH_TIMEOUT_SECONDS: '1' });
    expectOneLineFailure(result, 1, /slow\.zip: unpacking the model archive did not finish within 1 s \(MODEL_FETCH_TIMEOUT_SECONDS\)$/);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await fs.readdir(modelDir)).toEqual([]);
  }, 60_000);
});

describe('signals and leftovers', () => {
  test('SIGTERM mid-download: the fetcher stops at once, removes what it wrote, and says so in one line', async () => {
    const proxy = await FaultProxy.start(s3.endpoint, () => 'stall');
    const child = Background.start(process.execPath, [FETCHER], { env: fetcherEnv({ MODEL_URI: `s3://${BUCKET}/big/model.bin` }, proxy.endpoint) });
    try {
      const deadline = Date.now() + 20_000;
      while (!(await fs.readdir(modelDir)).some((f) => f.includes('.partial-')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await fs.readdir(modelDir)).some((f) => f.includes('.partial-'))).toBe(true);
      child.child.kill('SIGTERM');
      expect(await child.waitForExit(10_000)).toBe(143);
      expect(child.output).toMatch(/model-fetcher: error: s3:\/\/models\/big\/model\.bin: stopped by SIGTERM before the model was complete; nothing was left in MODEL_DIR\n\{"event":"model_start_failed","container":"model-fetcher",[^\n]*\}\n$/);
      expect(await fs.readdir(modelDir)).toEqual([]);
    } finally {
      await child.stop();
      await proxy.stop();
    }
  }, 60_000);

  test('what a SIGKILLed fetcher left (a partial file, a staging directory and archive) is removed by the next run', async () => {
    const proxy = await FaultProxy.start(s3.endpoint, () => 'stall');
    const child = Background.start(process.execPath, [FETCHER], { env: fetcherEnv({ MODEL_URI: `s3://${BUCKET}/big/model.bin` }, proxy.endpoint) });
    const deadline = Date.now() + 20_000;
    while (!(await fs.readdir(modelDir)).some((f) => f.includes('.partial-')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.child.kill('SIGKILL');
    await child.waitForExit(10_000);
    await proxy.stop();
    await fs.mkdir(path.join(modelDir, '.fetch-0123456789ab'));
    await fs.writeFile(path.join(modelDir, '.fetch-0123456789ab', 'half.bin'), 'x');
    await fs.writeFile(path.join(modelDir, '.fetch-0123456789ab.zip'), 'x');
    await fs.writeFile(path.join(modelDir, 'notes.txt'), 'not the fetcher\'s');
    expect((await fs.readdir(modelDir)).filter((f) => f.includes('.partial-'))).toHaveLength(1);

    const result = await fetcher({ MODEL_URI: `s3://${BUCKET}/prefix/model.joblib` });
    expect(result.code).toBe(0);
    expect((await fs.readdir(modelDir)).sort()).toEqual(['model.joblib', 'notes.txt']);
  }, 60_000);

  test('a key with a newline cannot forge a log line: keys are escaped, as the object and in a listing', async () => {
    const forged = 'model-fetcher: done: 1 file(s)';
    const single = await fetcher({ MODEL_URI: `s3://${BUCKET}/evil\n${forged}` });
    expectOneLineFailure(single, 1, /^model-fetcher: error: s3:\/\/models\/evil\\nmodel-fetcher: done: 1 file\(s\): NoSuchKey/);
    expect(`${single.stdout}${single.stderr}`.split('\n').filter((l) => l.startsWith('model-fetcher: done:'))).toEqual([]);

    // In a listing, a stranger's key reaches the log when something goes wrong with it.
    await s3.put(BUCKET, `listed/ok.joblib`, 'x');
    await s3.put(BUCKET, `listed/a\n${forged}`, 'y');
    const listed = await fetcher({ MODEL_URI: `s3://${BUCKET}/listed/`, MODEL_MANIFEST: JSON.stringify({ 'ok.joblib': sha256('x') }) });
    expectOneLineFailure(listed, 1, /the model has 'a\\nmodel-fetcher: done: 1 file\(s\)', which MODEL_MANIFEST does not name$/);
    expect(`${listed.stdout}${listed.stderr}`.split('\n').filter((l) => l.startsWith('model-fetcher: done:'))).toEqual([]);
    expect(await fs.readdir(modelDir)).toEqual([]);
  });
});
