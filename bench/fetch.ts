/**
 * npm run bench:fetch: the model fetcher against `aws s3 cp` and rclone, downloading from one
 * s3rver on 127.0.0.1: a 1 GiB object, and a prefix of 200 files. Prints each tool's wall time,
 * MiB/s and CPU seconds per GiB (user + system, of the downloading process and its children),
 * with the ratios to `aws s3 cp`.
 *
 *   BENCH_OBJECT_MIB=1024 BENCH_RUNS=2 npm run bench:fetch
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { MODEL_FETCHER_BUNDLE } from '../lib/functions/bundles';
import { LocalS3 } from '../scripts/local-s3';

const FETCHER = MODEL_FETCHER_BUNDLE;
const OBJECT_MIB = Number(process.env.BENCH_OBJECT_MIB ?? 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const PREFIX_FILES = 200;
const BUCKET = 'bench';
const CEILING = 'ceiling: 8 curl > null';
const DISK_FLOOR = 'floor: 8 curl > files';

interface Measure {
  readonly seconds: number;
  readonly cpuSeconds: number;
}

function requireTool(tool: string, install: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
  } catch {
    throw new Error(`${tool} is not installed: ${install}`);
  }
}

async function main(): Promise<void> {
  requireTool('aws', "the AWS CLI ('pip install awscli' or Debian's awscli)");
  requireTool('rclone', "'apt-get install -y rclone'");
  requireTool('/usr/bin/time', "'apt-get install -y time'");
  requireTool('curl', "'apt-get install -y curl' (7.75 or later, for --aws-sigv4)");
  if (!fs.existsSync(FETCHER)) throw new Error(`${FETCHER} is missing: run 'npm run build'`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-fetch-'));
  const s3 = await LocalS3.start();
  try {
    await s3.createBucket(BUCKET);
    const bigFile = path.join(work, 'big.bin');
    const fd = fs.openSync(bigFile, 'w');
    for (let i = 0; i < OBJECT_MIB; i++) fs.writeSync(fd, randomBytes(2 ** 20));
    fs.closeSync(fd);
    process.stderr.write(`uploading a ${OBJECT_MIB} MiB object and ${PREFIX_FILES} files to s3rver...\n`);
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'big/model.bin', Body: fs.createReadStream(bigFile), ContentLength: OBJECT_MIB * 2 ** 20 }));
    fs.rmSync(bigFile);
    const fileBytes = 2 ** 20;
    for (let i = 0; i < PREFIX_FILES; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => s3.put(BUCKET, `many/part-${i + j}.bin`, randomBytes(fileBytes))));
    }

    const out = path.join(work, 'out');
    const clean = () => fs.rmSync(out, { recursive: true, force: true });
    const baseEnv = { PATH: process.env.PATH!, HOME: process.env.HOME ?? work, ...s3.env() };
    const rcloneEnv = {
      ...baseEnv, RCLONE_CONFIG_BENCH_TYPE: 's3', RCLONE_CONFIG_BENCH_PROVIDER: 'Other', RCLONE_CONFIG_BENCH_ENDPOINT: s3.endpoint,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    };
    const tools: Array<[string, (what: 'object' | 'prefix') => [string, string[], NodeJS.ProcessEnv]]> = [
      ['model fetcher', (w) => [process.execPath, [FETCHER], { ...baseEnv, MODEL_DIR: out, MODEL_URI: `s3://${BUCKET}/${w === 'object' ? 'big/model.bin' : 'many/'}` }]],
      ['aws s3 cp', (w) => ['aws', ['--endpoint-url', s3.endpoint, 's3', 'cp', ...(w === 'object' ? [`s3://${BUCKET}/big/model.bin`, `${out}/model.bin`] : ['--recursive', `s3://${BUCKET}/many/`, out]), '--only-show-errors'], baseEnv]],
      ['rclone (8 streams)', (w) => ['rclone', [w === 'object' ? 'copyto' : 'copy', w === 'object' ? `bench:${BUCKET}/big/model.bin` : `bench:${BUCKET}/many`, w === 'object' ? `${out}/model.bin` : out,
        '--multi-thread-streams', '8', '--transfers', '8', '--checkers', '8'], rcloneEnv]],
    ];

    const results: Record<string, Record<string, Measure>> = {};
    for (const what of ['object', 'prefix'] as const) {
      for (const [name, command] of tools) {
        const [cmd, args, env] = command(what);
        process.stderr.write(`  ${name}: ${what}...\n`);
        results[what] ??= {};
        results[what][name] = timed(cmd, args, env, clean);
      }
    }
    // The server's own ceiling: 8 parallel ranged GETs by curl, straight into /dev/null (no disk,
    // no hashing, no SDK). No client can download faster from this server on this machine.
    // And the floor of writing it to disk: the same 8 curls, each into a file of its own. A
    // client that writes the object to a file pays at least that much here.
    // (s3rver serves anonymous reads; curl's own SigV4 lacks a header it wants.)
    const part = Math.ceil((OBJECT_MIB * 2 ** 20) / 8);
    const curls = (into: (i: number) => string) => `pids=; ${Array.from({ length: 8 }, (_, i) =>
      `curl -sf -r ${i * part}-${(i + 1) * part - 1} -o ${into(i)} ${s3.endpoint}/${BUCKET}/big/model.bin & pids="$pids $!";`).join(' ')} for p in $pids; do wait $p || exit 1; done`;
    process.stderr.write('  server ceiling: object...\n');
    results.object[CEILING] = timed('sh', ['-c', curls(() => '/dev/null')], baseEnv, clean);
    process.stderr.write('  disk floor: object...\n');
    results.object[DISK_FLOOR] = timed('sh', ['-c', `mkdir -p ${out} && ${curls((i) => `${out}/part-${i}`)}`], baseEnv, clean);
    clean();

    console.log(`\nbench:fetch: s3rver on 127.0.0.1, best of ${RUNS} run(s), ${os.cpus().length} CPUs\n`);
    for (const [what, label, mib] of [['object', `one ${OBJECT_MIB} MiB object`, OBJECT_MIB], ['prefix', `a prefix of ${PREFIX_FILES} x 1 MiB files`, PREFIX_FILES]] as const) {
      console.log(label);
      console.log(['  tool'.padEnd(22), 'seconds'.padStart(8), 'MiB/s'.padStart(8), 'CPU s/GiB'.padStart(10), 'vs aws s3 cp'.padStart(13)].join('  '));
      const aws = results[what]['aws s3 cp'];
      for (const [name, r] of Object.entries(results[what])) {
        const rate = mib / r.seconds;
        console.log([`  ${name}`.padEnd(22), r.seconds.toFixed(2).padStart(8), rate.toFixed(0).padStart(8),
          (r.cpuSeconds / (mib / 1024)).toFixed(2).padStart(10), `${(aws.seconds / r.seconds).toFixed(2)}x`.padStart(13)].join('  '));
      }
      console.log('');
    }
    const fetcher = results.object['model fetcher'];
    const aws = results.object['aws s3 cp'];
    const floor = results.object[DISK_FLOOR].seconds;
    const target = aws.seconds / 2;
    console.log(`2x aws s3 cp on the object means ${target.toFixed(2)} s: the fetcher took ${fetcher.seconds.toFixed(2)} s (${(aws.seconds / fetcher.seconds).toFixed(2)}x); ` +
      `this server delivers the object in ${results.object[CEILING].seconds.toFixed(2)} s at best, and into files in ${floor.toFixed(2)} s at best` +
      (floor > target ? ' (below 2x aws s3 cp: out of reach of any client that writes the object to disk here).' : '.'));
  } finally {
    await s3.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Runs a command under GNU time RUNS times; returns the fastest run's wall and CPU seconds. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv, clean: () => void): Measure {
  let best: Measure | undefined;
  for (let i = 0; i < RUNS; i++) {
    clean();
    const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', command, ...args], { env, encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`${command} failed (${r.status}): ${(r.stderr ?? '').slice(-800)}`);
    const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
    if (!m) throw new Error(`no timing from ${command}: ${r.stderr.slice(-500)}`);
    const measure = { seconds: Number(m[1]), cpuSeconds: Number(m[2]) + Number(m[3]) };
    if (!best || measure.seconds < best.seconds) best = measure;
  }
  return best!;
}

main().catch((err) => {
  console.error(`bench:fetch: ${err.message}`);
  process.exit(1);
});
