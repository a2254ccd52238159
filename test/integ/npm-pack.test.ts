import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../lib/asset-paths';
import { run } from '../../scripts/processes';

/**
 * The package as a team gets it: `npm run pack` holds what an app needs (the compiled library and
 * its types, the jsii assembly, the Docker build contexts, the bundled fetcher, functions and CLI,
 * the sample model, the docs the README links to) and nothing else, under a manifest without this
 * repository's build hooks. Then a fresh app, outside this repository, installs the tarball from
 * the registry's packages twice: at the lowest aws-cdk-lib the peer range allows, with the
 * TypeScript and CDK CLI this repository builds with; and at the newest aws-cdk-lib, constructs,
 * cdk-nag, CDK CLI and TypeScript the registry serves today, as `cdk init` would bring them. Each
 * time the app type-checks against the shipped types and `cdk synth` runs its own stacks (Fargate
 * with a canary and golden requests, GPU capacity) under cdk-nag's AwsSolutions checks: 0 errors.
 */
const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
const MANIFEST = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8'));

/** Everything the tarball may hold. */
const ALLOWED = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/, /^API\.md$/, /^\.jsii$/, /^docs\/[a-z-]+\.md$/,
  /^lib\/([a-z]+\/)?[a-z0-9-]+\.(js|d\.ts)$/,
  /^cli\/dist\/main\.js(\.LEGAL\.txt)?$/,
  /^assets\/model-server\/(Dockerfile|Dockerfile\.gpu|\.dockerignore|requirements(-gpu)?\.txt)$/,
  /^assets\/model-server\/model_server\/([a-z_]+\/)?[a-z_]+\.(py|json)$/,
  /^assets\/model-fetcher\/(Dockerfile|\.dockerignore|dist\/fetcher\.js(\.LEGAL\.txt)?)$/,
  /^assets\/functions\/dist\/[a-z-]+\/index\.js(\.LEGAL\.txt)?$/,
  /^assets\/sample-model\/(iris\.joblib|train\.py|golden\.jsonl)$/,
];

let workDir: string;
let files: string[];
let tarball: string;

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'consumer-'));
  // npm test has built everything; the pack script packs that build, without rebuilding.
  const packed = await run(process.execPath, [path.join(PACKAGE_ROOT, 'scripts', 'pack.mjs'), workDir], { cwd: PACKAGE_ROOT, env: NPM_ENV, timeoutMs: 180_000 });
  if (packed.code !== 0) throw new Error(`npm run pack failed:\n${packed.stderr.slice(-3000)}`);
  tarball = packed.stdout.trim().split('\n').pop()!;
  files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
}, 240_000);

afterAll(() => {
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

test('the tarball holds what a consumer needs and nothing else', () => {
  expect(files.filter((f) => !ALLOWED.some((re) => re.test(f)))).toEqual([]);
  for (const needed of [
    'lib/index.js', 'lib/index.d.ts', '.jsii', 'cli/dist/main.js', 'LICENSE', 'API.md',
    'assets/model-server/Dockerfile', 'assets/model-server/Dockerfile.gpu', 'assets/model-server/requirements.txt',
    'assets/model-server/model_server/app.py', 'assets/model-server/model_server/loaders/pickled.py', 'assets/model-server/model_server/loaders/formats.json',
    'assets/model-fetcher/Dockerfile', 'assets/model-fetcher/dist/fetcher.js',
    'assets/functions/dist/golden-requests/index.js', 'assets/functions/dist/release-instances/index.js',
    'assets/sample-model/iris.joblib', 'assets/sample-model/golden.jsonl',
    // The licenses of the packages bundled into the fetcher, the functions and the CLI.
    'assets/model-fetcher/dist/fetcher.js.LEGAL.txt', 'assets/functions/dist/golden-requests/index.js.LEGAL.txt', 'cli/dist/main.js.LEGAL.txt',
  ]) expect(files).toContain(needed);
  // The runtime dependencies are the peer dependencies alone: the CLI and the functions are bundled.
  expect(MANIFEST.dependencies ?? {}).toEqual({});
  expect(Object.keys(MANIFEST.peerDependencies).sort()).toEqual(['aws-cdk-lib', 'constructs']);
});

test('the published manifest has no build hook and no workspaces; the README\'s links resolve inside the package', () => {
  const published = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
  expect(published.scripts.prepare).toBeUndefined();
  expect(published.workspaces).toBeUndefined();
  expect(published.peerDependencies['aws-cdk-lib']).toMatch(/^\^2\.\d+\.\d+$/);
  const readme = execFileSync('tar', ['-xzOf', tarball, 'package/README.md'], { encoding: 'utf8' });
  const links = [...readme.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l));
  expect(links.length).toBeGreaterThan(5);
  expect(links.filter((l) => !files.includes(path.posix.normalize(l)))).toEqual([]);
});

/** The lowest version a caret range allows: '^2.276.0' → '2.276.0'. */
const floor = (range: string) => range.replace(/^[\^~>=]+/, '');

const APP = `
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FargateModelService, GoldenRequests, GpuModelService, ModelSource, Rollout } from 'cdk-model-serving';

const sample = path.join(path.dirname(require.resolve('cdk-model-serving/package.json')), 'assets', 'sample-model');
const app = new App();
const env = { account: '123456789012', region: 'eu-west-1' };
const network = new Stack(app, 'Network', { env });
const vpc = new ec2.Vpc(network, 'Vpc', { maxAzs: 2, natGateways: 1 });
vpc.addFlowLog('FlowLogs');
const models = new Stack(app, 'Models', { env });
const iris = new FargateModelService(models, 'Iris', {
  vpc,
  model: ModelSource.fromAsset(path.join(sample, 'iris.joblib')),
  rollout: Rollout.canary({ percent: 10 }),
  goldenRequests: GoldenRequests.fromFile(path.join(sample, 'golden.jsonl')),
});
new GpuModelService(models, 'Vision', { vpc, model: ModelSource.fromAsset(path.join(sample, 'iris.joblib')) });
console.error(iris.metricsServiceName);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
`;

describe.each([
  ['the lowest aws-cdk-lib it supports, with this repository\'s TypeScript and CDK CLI', {
    'aws-cdk-lib': floor(MANIFEST.peerDependencies['aws-cdk-lib']),
    'constructs': floor(MANIFEST.peerDependencies.constructs),
    'cdk-nag': floor(MANIFEST.devDependencies['cdk-nag']),
    'aws-cdk': floor(MANIFEST.devDependencies['aws-cdk']),
    'typescript': floor(MANIFEST.devDependencies.typescript),
  }],
  ['the newest aws-cdk-lib, constructs, cdk-nag, CDK CLI and TypeScript the registry serves', {
    'aws-cdk-lib': 'latest', 'constructs': 'latest', 'cdk-nag': 'latest', 'aws-cdk': 'latest', 'typescript': 'latest',
  }],
])('a fresh app at %s', (_name, versions) => {
  let app: string;
  beforeAll(async () => {
    app = fs.mkdtempSync(path.join(workDir, 'app-'));
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }));
    const specs = Object.entries(versions).map(([name, version]) => `${name}@${version}`);
    const installed = await run('npm', ['install', '--prefer-offline', '--no-package-lock', '--ignore-scripts', tarball, ...specs, '@types/node@20'],
      { cwd: app, env: NPM_ENV, timeoutMs: 540_000 });
    if (installed.code !== 0) throw new Error(`npm install of the tarball with ${specs.join(' ')} failed:\n${installed.stderr.slice(-3000)}`);
  }, 600_000);

  test('installs the package beside those versions, type-checks against its types, and cdk synth passes cdk-nag', async () => {
    const version = (name: string) => JSON.parse(fs.readFileSync(path.join(app, 'node_modules', name, 'package.json'), 'utf8')).version;
    if (versions['aws-cdk-lib'] !== 'latest') expect(version('aws-cdk-lib')).toBe(versions['aws-cdk-lib']);
    fs.writeFileSync(path.join(app, 'app.ts'), APP);
    // What a deployed app keeps in cdk.context.json: its region's availability zones.
    fs.writeFileSync(path.join(app, 'cdk.context.json'), JSON.stringify({
      'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
    }));
    // Options both TypeScript 5.9 and 7 take (7 dropped moduleResolution node10); the app is CommonJS.
    const tsc = await run(path.join(app, 'node_modules', '.bin', 'tsc'), ['--strict', '--target', 'ES2022', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--esModuleInterop', '--skipLibCheck', '--types', 'node', 'app.ts'], { cwd: app, timeoutMs: 180_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');

    const synth = await run(path.join(app, 'node_modules', '.bin', 'cdk'), ['synth', '--app', 'node app.js', '--output', 'cdk.out', '--quiet', '--no-notices'],
      { cwd: app, env: { ...NPM_ENV, CDK_DISABLE_VERSION_CHECK: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' }, timeoutMs: 300_000 });
    const report = path.join(app, 'cdk.out', 'validation-report.json');
    const violations = fs.existsSync(report)
      ? JSON.parse(fs.readFileSync(report, 'utf8')).pluginReports.flatMap((r: any) => r.violations.flatMap((v: any) =>
        v.violatingConstructs.map((c: any) => `${v.ruleName} at ${c.constructPath}`)))
      : [];
    expect({ versions: `aws-cdk-lib ${version('aws-cdk-lib')}, cdk-nag ${version('cdk-nag')}, aws-cdk ${version('aws-cdk')}, typescript ${version('typescript')}`, violations })
      .toEqual({ versions: expect.any(String), violations: [] });
    if (synth.code !== 0) throw new Error(`cdk synth failed:\n${synth.stderr.slice(-3000)}`);

    const template = JSON.parse(fs.readFileSync(path.join(app, 'cdk.out', 'Models.template.json'), 'utf8'));
    const types = Object.values<any>(template.Resources).map((r) => r.Type);
    expect(types).toEqual(expect.arrayContaining(['AWS::ECS::Service', 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::Lambda::Function',
      'AWS::AutoScaling::AutoScalingGroup', 'AWS::CloudWatch::Dashboard']));
    // Every asset the package ships was found and staged: the images' build contexts and the files.
    const assets = JSON.parse(fs.readFileSync(path.join(app, 'cdk.out', 'Models.assets.json'), 'utf8'));
    const images = Object.values<any>(assets.dockerImages).map((i) => fs.readdirSync(path.join(app, 'cdk.out', i.source.directory)).sort());
    expect(images).toEqual(expect.arrayContaining([
      expect.arrayContaining(['Dockerfile', 'model_server', 'requirements.txt']),
      expect.arrayContaining(['Dockerfile.gpu', 'model_server', 'requirements-gpu.txt']),
      expect.arrayContaining(['Dockerfile', 'dist']),
    ]));
    const staged = Object.values<any>(assets.files).map((f) => f.source.path);
    for (const p of staged) expect(fs.existsSync(path.join(app, 'cdk.out', p))).toBe(true);
  }, 420_000);
});
