import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Every TypeScript example in the README and docs/ compiles against the library's real API, with
 * `tsc` in strict mode. An example with its own imports is compiled as it stands; a fragment is
 * compiled inside a Stack subclass's constructor (`this`), with the few names examples take as
 * given (an app, its env, a model, a platform stack's resources, an SNS topic) declared.
 */
const ROOT = path.join(__dirname, '..', '..');
const OUT = path.join(ROOT, 'dist', 'doc-examples');

const PRELUDE = `import { App, Duration, Environment, Stack, TimeZone } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  FargateModelService, GoldenRequests, GpuModelService, ModelImageRepository, ModelSource, Rollout, ServingImage,
} from 'cdk-model-serving';

declare const app: App;
declare const env: Environment;
declare const model: ModelSource;
declare const modelsStack: Stack;
declare const platform: { cluster: ecs.ICluster; modelBucket: s3.IBucket; listener: elbv2.IApplicationListener };
declare const pagerTopic: sns.ITopic;
`;

interface Example {
  readonly doc: string;
  readonly line: number;
  readonly code: string;
}

function examples(): Example[] {
  const docs = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  return docs.flatMap((doc) => {
    const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
    return [...text.matchAll(/```(?:ts|typescript)\n([\s\S]*?)```/g)].map((m) => ({
      doc, line: text.slice(0, m.index).split('\n').length + 1, code: m[1],
    }));
  });
}

function source(example: Example): string {
  if (/^import /m.test(example.code)) return example.code;
  const body = example.code.split('\n').map((l) => `    ${l}`).join('\n');
  // Every prelude name is referenced once, so that an example need not use them all.
  return `${PRELUDE}
export class Example extends Stack {
  constructor() {
    super(app, 'Example', { env });
${body}
  }
}
void [Duration, acm, SnsAction, ec2, FargateModelService, GoldenRequests, GpuModelService, ModelImageRepository, ModelSource, Rollout, ServingImage, model, modelsStack, platform, pagerTopic];
`;
}

test('every TypeScript example in the README and docs/ compiles in strict mode', () => {
  const found = examples();
  expect(found.length).toBeGreaterThanOrEqual(6);
  expect(found.map((e) => e.doc)).toContain('README.md');
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const names = found.map((e, i) => {
    const name = `${e.doc.replace(/[/.]/g, '_')}_L${e.line}_${i}.ts`;
    fs.writeFileSync(path.join(OUT, name), source(e));
    return name;
  });
  fs.writeFileSync(path.join(OUT, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'commonjs', moduleResolution: 'node', lib: ['ES2022'], types: ['node'], strict: true,
      noEmit: true, skipLibCheck: true, esModuleInterop: true, baseUrl: ROOT, paths: { 'cdk-model-serving': ['lib/index.ts'] },
    },
    files: names,
  }));
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', OUT], { encoding: 'utf8', timeout: 120_000 });
  // Name each failing example by its document and line.
  const errors = (tsc.stdout + tsc.stderr).split('\n').filter((l) => l.includes('error TS')).map((l) => {
    const i = names.findIndex((n) => l.startsWith(n) || l.includes(`/${n}`));
    return i >= 0 ? `${found[i].doc} (example at line ${found[i].line}): ${l.slice(l.indexOf('error TS'))}` : l;
  });
  expect(errors).toEqual([]);
  expect(tsc.status).toBe(0);
}, 120_000);

test('the check is live: an example that uses a prop the constructs do not have fails', () => {
  const dir = path.join(OUT, 'negative');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'bad.ts'), source({ doc: 'x', line: 1, code: "new FargateModelService(this, 'M', { model, cpus: 2 });\n" }));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'commonjs', moduleResolution: 'node', types: ['node'], strict: true, noEmit: true, skipLibCheck: true, baseUrl: ROOT, paths: { 'cdk-model-serving': ['lib/index.ts'] } },
    files: ['bad.ts'],
  }));
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', timeout: 120_000 });
  expect(tsc.status).not.toBe(0);
  expect(tsc.stdout).toMatch(/'cpus' does not exist in type 'FargateModelServiceProps'/);
}, 120_000);
