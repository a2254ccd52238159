import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../../scripts/processes';

/**
 * The package as a consumer gets it: `npm pack` holds what an app needs (the compiled library and
 * its types, the jsii assembly, the Docker build contexts, the bundled fetcher, functions and CLI,
 * the sample model) and nothing else; installed from the tarball into a fresh app outside this
 * repository (npm's cache only: no registry), the app type-checks against the shipped types, and
 * synthesizes a stack of its own that uses the constructs, with every asset the package ships.
 */
const ROOT = path.join(__dirname, '..', '..');
const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

/** Everything the tarball may hold. */
const ALLOWED = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/, /^API\.md$/, /^\.jsii$/,
  /^lib\/[a-z0-9-]+\.(js|d\.ts)$/,
  /^cli\/dist\/main\.js$/,
  /^assets\/model-server\/(Dockerfile|Dockerfile\.gpu|\.dockerignore|requirements(-gpu)?\.txt)$/,
  /^assets\/model-server\/model_server\/([a-z_]+\/)?[a-z_]+\.py$/,
  /^assets\/model-fetcher\/(Dockerfile|\.dockerignore|dist\/fetcher\.js)$/,
  /^assets\/functions\/dist\/[a-z-]+\/index\.js$/,
  /^assets\/sample-model\/(iris\.joblib|train\.py|golden\.jsonl)$/,
];

let workDir: string;
let files: string[];
let tarball: string;

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'consumer-'));
  // npm test has built everything; --ignore-scripts packs that build instead of rebuilding.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', workDir], { cwd: ROOT, env: NPM_ENV, timeoutMs: 120_000 });
  expect(packed.code).toBe(0);
  const [info] = JSON.parse(packed.stdout);
  files = info.files.map((f: { path: string }) => f.path);
  tarball = path.join(workDir, info.filename);
}, 180_000);

afterAll(() => {
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

test('the tarball holds what a consumer needs and nothing else', () => {
  expect(files.filter((f) => !ALLOWED.some((re) => re.test(f)))).toEqual([]);
  for (const needed of [
    'lib/index.js', 'lib/index.d.ts', '.jsii', 'cli/dist/main.js', 'LICENSE', 'API.md',
    'assets/model-server/Dockerfile', 'assets/model-server/Dockerfile.gpu', 'assets/model-server/requirements.txt',
    'assets/model-server/model_server/app.py', 'assets/model-server/model_server/loaders/pickled.py',
    'assets/model-fetcher/Dockerfile', 'assets/model-fetcher/dist/fetcher.js',
    'assets/functions/dist/golden-requests/index.js', 'assets/functions/dist/release-instances/index.js',
    'assets/sample-model/iris.joblib', 'assets/sample-model/golden.jsonl',
  ]) expect(files).toContain(needed);
  // The runtime dependencies are the peer dependencies alone: the CLI and the functions are bundled.
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  expect(manifest.dependencies ?? {}).toEqual({});
  expect(Object.keys(manifest.peerDependencies).sort()).toEqual(['aws-cdk-lib', 'constructs']);
});

test('a fresh app installs the tarball, type-checks against its types, and synthesizes its own stacks with it', async () => {
  const app = path.join(workDir, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }));
  // The peer dependencies come from this checkout's node_modules (npm links folders), the library
  // from its tarball; nothing is fetched.
  const installed = await run('npm', ['install', '--offline', '--no-package-lock', '--ignore-scripts', tarball,
    path.join(ROOT, 'node_modules', 'aws-cdk-lib'), path.join(ROOT, 'node_modules', 'constructs')], { cwd: app, env: NPM_ENV, timeoutMs: 300_000 });
  if (installed.code !== 0) throw new Error(`npm install from the tarball failed:\n${installed.stderr.slice(-3000)}`);
  expect(fs.lstatSync(path.join(app, 'node_modules', 'cdk-model-serving')).isSymbolicLink()).toBe(false);

  // The team's own stacks: a network stack, and a model stack that uses its VPC.
  fs.writeFileSync(path.join(app, 'app.ts'), `
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { FargateModelService, GoldenRequests, ModelSource, Rollout } from 'cdk-model-serving';

const sample = path.join(path.dirname(require.resolve('cdk-model-serving/package.json')), 'assets', 'sample-model');
const app = new App({ outdir: process.argv[2] });
const env = { account: '123456789012', region: 'eu-west-1' };
const network = new Stack(app, 'Network', { env });
const vpc = new ec2.Vpc(network, 'Vpc', { maxAzs: 2, natGateways: 1 });
const models = new Stack(app, 'Models', { env });
const iris = new FargateModelService(models, 'Iris', {
  vpc,
  model: ModelSource.fromAsset(path.join(sample, 'iris.joblib')),
  rollout: Rollout.canary({ percent: 10 }),
  goldenRequests: GoldenRequests.fromFile(path.join(sample, 'golden.jsonl')),
});
console.log(iris.metricsServiceName);
app.synth();
`);
  const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--strict', '--target', 'ES2022', '--module', 'commonjs',
    '--moduleResolution', 'node', '--esModuleInterop', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), 'app.ts'],
  { cwd: app, timeoutMs: 180_000 });
  expect(tsc.stdout + tsc.stderr).toBe('');
  expect(tsc.code).toBe(0);

  const out = path.join(workDir, 'cdk.out');
  const synth = await run(process.execPath, ['app.js', out], { cwd: app, timeoutMs: 180_000 });
  if (synth.code !== 0) throw new Error(`the consumer app failed to synthesize:\n${synth.stderr.slice(-3000)}`);
  const template = JSON.parse(fs.readFileSync(path.join(out, 'Models.template.json'), 'utf8'));
  const types = Object.values<any>(template.Resources).map((r) => r.Type);
  expect(types).toEqual(expect.arrayContaining(['AWS::ECS::Service', 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::Lambda::Function', 'AWS::CloudWatch::Dashboard']));
  // Every asset the package ships was found and staged: the two images' build contexts and the files.
  const assets = JSON.parse(fs.readFileSync(path.join(out, 'Models.assets.json'), 'utf8'));
  const images = Object.values<any>(assets.dockerImages).map((i) => fs.readdirSync(path.join(out, i.source.directory)).sort());
  expect(images).toEqual(expect.arrayContaining([
    expect.arrayContaining(['Dockerfile', 'model_server', 'requirements.txt']),
    expect.arrayContaining(['Dockerfile', 'dist']),
  ]));
  const staged = Object.values<any>(assets.files).map((f) => f.source.path);
  for (const p of staged) expect(fs.existsSync(path.join(out, p))).toBe(true);
  expect(staged.length).toBeGreaterThanOrEqual(3); // the model, the golden file, the hook's bundle
}, 600_000);
