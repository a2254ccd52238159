/**
 * npm run bench:synth: `cdk synth` of the example app (cdk.json: ts-node transpiling with swc, no
 * type check; the type check is `npm run build` / `npm run typecheck`) against a bare
 * ApplicationLoadBalancedFargateService app run the way `cdk init` sets one up (ts-node with type
 * checking) and the same bare app run by cdk.json's own command, all by the real CDK CLI from this
 * checkout, alternately, with this checkout's cdk.json context. Prints each run's wall time, the
 * medians, and the ratios (the target: at most 1.2).
 *
 *   BENCH_RUNS=5 npm run bench:synth
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const CDK = path.join(ROOT, 'node_modules', '.bin', 'cdk');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CDK_JSON_APP: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')).app;
if (!CDK_JSON_APP.endsWith(' bin/app.ts')) throw new Error(`cdk.json's app no longer runs bin/app.ts: ${CDK_JSON_APP}`);
const APPS: Record<string, string[]> = {
  'example app (cdk.json)': [],
  'bare ALB Fargate pattern (cdk init)': ['--app', 'npx ts-node --prefer-ts-exts bench/bare-app/app.ts'],
  'bare ALB Fargate pattern (cdk.json\'s runner)': ['--app', CDK_JSON_APP.replace(/ bin\/app\.ts$/, ' bench/bare-app/app.ts')],
};

function synthSeconds(args: string[]): number {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-synth-'));
  const started = process.hrtime.bigint();
  const result = spawnSync(CDK, ['synth', '--quiet', '--output', out, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' },
    timeout: 300_000,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  fs.rmSync(out, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`cdk synth ${args.join(' ')} failed:\n${result.stderr}`);
  if (/feature flags? (are|is) not configured/i.test(result.stdout + result.stderr)) {
    console.log(`  note: ${args.length ? 'the bare app' : 'the example app'} reports unconfigured feature flags`);
  }
  return seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const times: Record<string, number[]> = Object.fromEntries(Object.keys(APPS).map((k) => [k, []]));
synthSeconds([]); // warm the file cache and npx's lookup; not counted
for (let run = 1; run <= RUNS; run++) {
  for (const [name, args] of Object.entries(APPS)) {
    const s = synthSeconds(args);
    times[name].push(s);
    console.log(`run ${run}: ${name}: ${s.toFixed(2)} s`);
  }
}
const [ours, bare, bareFast] = Object.keys(APPS).map((k) => median(times[k]));
console.log('');
for (const name of Object.keys(APPS)) console.log(`${name.padEnd(44)} median ${median(times[name]).toFixed(2)} s`);
console.log(`ratio example / bare (cdk init): ${(ours / bare).toFixed(2)} (target <= 1.20)`);
console.log(`ratio example / bare (cdk.json's runner, like for like): ${(ours / bareFast).toFixed(2)}`);
