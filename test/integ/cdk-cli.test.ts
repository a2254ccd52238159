import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../../scripts/processes';
import { cfnLint, requireCfnLint, templatesIn } from '../helpers/cfn-lint';

const ROOT = path.join(__dirname, '..', '..');
const CDK = path.join(ROOT, 'node_modules', '.bin', 'cdk');

/**
 * The real CDK CLI synthesizing the example app, cdk-nag included, as a user would run it; every
 * template it writes is checked by cfn-lint, CloudFormation's own linter.
 */
beforeAll(() => {
  requireCfnLint();
});

async function cdkSynth(...context: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-cli-'));
  const args = ['synth', '--quiet', '--output', out, ...context.flatMap((c) => ['-c', c])];
  const result = await run(CDK, args, {
    cwd: ROOT,
    env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true', CDK_DISABLE_CLI_TELEMETRY: 'true' },
    timeoutMs: 170_000,
  });
  return { ...result, out };
}

function template(out: string): any {
  return JSON.parse(fs.readFileSync(path.join(out, 'ModelServing.template.json'), 'utf8'));
}

function fetcherEnv(t: any): Record<string, unknown> {
  const task = Object.values(t.Resources).find((r: any) => r.Type === 'AWS::ECS::TaskDefinition') as any;
  const fetcher = task.Properties.ContainerDefinitions.find((c: any) => c.Name === 'model-fetcher');
  return Object.fromEntries(fetcher.Environment.map((e: any) => [e.Name, e.Value]));
}

test('cdk synth with no context deploys the sample model, with no cdk-nag errors and a clean cfn-lint', async () => {
  const result = await cdkSynth();
  expect(result.stderr).not.toMatch(/ERROR|Validation failed/);
  expect(result.code).toBe(0);
  // Quiet: cdk.json sets the recommended feature flags, and the constructs leave no warnings or notes.
  expect(result.stdout + result.stderr).not.toMatch(/feature flags|WARNING|INFO/);
  expect(cfnLint(templatesIn(result.out))).toEqual([]);
  const env = fetcherEnv(template(result.out));
  expect(env.MODEL_SHA256).toMatch(/^[0-9a-f]{64}$/);
  // The validation report exists only when validation plugins ran; cdk-nag adds a plugin report only for findings.
  const report = JSON.parse(fs.readFileSync(path.join(result.out, 'validation-report.json'), 'utf8'));
  expect(report.pluginReports.filter((r: any) => r.conclusion !== 'success')).toEqual([]);
}, 180_000);

test('cdk synth -c modelUri=... points the fetcher at that object', async () => {
  const result = await cdkSynth('modelUri=s3://team-models/iris/model.joblib');
  expect(result.code).toBe(0);
  expect(fetcherEnv(template(result.out)).MODEL_URI).toBe('s3://team-models/iris/model.joblib');
}, 180_000);

test('cdk synth -c modelUri=<malformed> fails with the reason', async () => {
  const result = await cdkSynth('modelUri=team-models/model.joblib');
  expect(result.code).not.toBe(0);
  expect(result.stderr).toMatch(/ModelSource.fromS3Uri: invalid 'uri': expected s3:\/\/bucket\/key/);
}, 180_000);

test('cdk synth -c compute=gpu gives the GPU service with the same model wiring, with no cdk-nag errors and a clean cfn-lint', async () => {
  const result = await cdkSynth('compute=gpu');
  expect(result.stderr).not.toMatch(/ERROR|Validation failed/);
  expect(result.code).toBe(0);
  expect(cfnLint(templatesIn(result.out))).toEqual([]);
  const t = template(result.out);
  const types = Object.values(t.Resources).map((r: any) => r.Type);
  expect(types).toEqual(expect.arrayContaining(['AWS::ECS::CapacityProvider', 'AWS::EC2::LaunchTemplate', 'AWS::AutoScaling::AutoScalingGroup']));
  const task = Object.values(t.Resources).find((r: any) => r.Type === 'AWS::ECS::TaskDefinition') as any;
  const server = task.Properties.ContainerDefinitions.find((c: any) => c.Name === 'server');
  expect(server.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
  expect(fetcherEnv(t).MODEL_SHA256).toMatch(/^[0-9a-f]{64}$/);
}, 180_000);

test('cdk synth -c compute=gpu -c spot=true on a g5 with a prefix model: no cdk-nag errors, a clean cfn-lint', async () => {
  const result = await cdkSynth('compute=gpu', 'spot=true', 'instanceType=g5.2xlarge', 'modelUri=s3://team-models/resnet/');
  expect(result.stderr).not.toMatch(/ERROR|Validation failed/);
  expect(result.code).toBe(0);
  expect(cfnLint(templatesIn(result.out))).toEqual([]);
  const types = Object.values(template(result.out).Resources).map((r: any) => r.Type);
  expect(types).toContain('AWS::AutoScaling::AutoScalingGroup');
}, 180_000);

test('cdk synth -c rollout=canary -c goldenRequests=<file>: a canary with the golden-request hook, no cdk-nag errors, a clean cfn-lint', async () => {
  const result = await cdkSynth('rollout=canary', 'goldenRequests=assets/sample-model/golden.jsonl', 'modelVersion=iris-2026-11');
  expect(result.stderr).not.toMatch(/ERROR|Validation failed/);
  expect(result.code).toBe(0);
  expect(cfnLint(templatesIn(result.out))).toEqual([]);
  const resources = Object.values<any>(template(result.out).Resources);
  const service = resources.find((r) => r.Type === 'AWS::ECS::Service');
  expect(service.Properties.DeploymentConfiguration).toMatchObject({ Strategy: 'CANARY', LifecycleHooks: [expect.objectContaining({ LifecycleStages: ['POST_TEST_TRAFFIC_SHIFT'] })] });
  expect(resources.filter((r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup')).toHaveLength(2);
  const task = resources.find((r) => r.Type === 'AWS::ECS::TaskDefinition');
  const server = task.Properties.ContainerDefinitions.find((c: any) => c.Name === 'server');
  expect(server.Environment).toContainEqual({ Name: 'MODEL_VERSION', Value: 'iris-2026-11' });
}, 180_000);

test('cdk synth -c rollout=<unknown>, or golden requests on a rolling rollout, fail with the reason', async () => {
  const unknown = await cdkSynth('rollout=shadow');
  expect(unknown.code).not.toBe(0);
  expect(unknown.stderr).toContain("'-c rollout' must be one of rolling, canary, linear, blueGreen, got 'shadow'");
  const rolling = await cdkSynth('goldenRequests=assets/sample-model/golden.jsonl');
  expect(rolling.code).not.toBe(0);
  expect(rolling.stderr).toContain("error: '-c goldenRequests' are checked against the new tasks before traffic moves to them: add '-c rollout=canary'");
}, 360_000);

test('the app speaks the CLI\'s language: unknown keys and non-boolean booleans are refused, all in one pass, one line each, no stack trace', async () => {
  const result = await cdkSynth('modelpath=./model.joblib', 'gpu=true', 'plainHttp=yes', 'compute=tpu');
  expect(result.code).not.toBe(0);
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('error: '));
  expect(errors).toEqual([
    expect.stringMatching(/^error: unknown '-c modelpath': did you mean '-c modelPath'\?/),
    expect.stringMatching(/^error: unknown '-c gpu' \(the app reads stackName, modelPath, /),
    "error: '-c plainHttp' must be true or false, got 'yes'",
    "error: '-c compute' must be 'cpu' (Fargate) or 'gpu' (EC2 GPU capacity), got 'tpu'",
  ]);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  // A prop the library refuses is one line too.
  const refused = await cdkSynth('modelUri=s3://team-models/model.onnx');
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain("error: ModelServing/Model: invalid 'model': is 'model.onnx', which is not a model file the server reads");
  expect(refused.stderr).not.toMatch(/^\s+at /m);
}, 360_000);

test('cdk synth -c modelUri -c modelKmsKeyArn serves a model from an SSE-KMS bucket, and says which model it serves', async () => {
  const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const result = await cdkSynth('modelUri=s3://team-models/iris/model.joblib', `modelKmsKeyArn=${key}`);
  expect(result.code).toBe(0);
  expect(result.stderr).toContain('cdk-model-serving: stack ModelServing serves s3://team-models/iris/model.joblib on Fargate, rolling rollouts');
  const policies = Object.values<any>(template(result.out).Resources).filter((r) => r.Type === 'AWS::IAM::Policy');
  const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
  expect(statements).toEqual(expect.arrayContaining([expect.objectContaining({ Action: 'kms:Decrypt', Resource: key })]));
}, 180_000);

test('cdk synth -c imageRepository=... adds the image repository stack, which the serving stack waits for and pushes to', async () => {
  const result = await cdkSynth('imageRepository=iris-model-server', 'modelVersion=iris-7');
  expect(result.stderr).not.toMatch(/ERROR|Validation failed/);
  expect(result.code).toBe(0);
  expect(templatesIn(result.out).map((f) => path.basename(f)).sort()).toEqual(['ModelServing.template.json', 'ModelServingImages.template.json']);
  expect(cfnLint(templatesIn(result.out))).toEqual([]);
  const images = JSON.parse(fs.readFileSync(path.join(result.out, 'ModelServingImages.template.json'), 'utf8'));
  const repo = Object.values(images.Resources).find((r: any) => r.Type === 'AWS::ECR::Repository') as any;
  expect(repo.Properties).toMatchObject({ RepositoryName: 'iris-model-server', ImageTagMutability: 'IMMUTABLE', ImageScanningConfiguration: { ScanOnPush: true } });

  const manifest = JSON.parse(fs.readFileSync(path.join(result.out, 'manifest.json'), 'utf8'));
  expect(manifest.artifacts.ModelServing.dependencies).toContain('ModelServingImages');
  const assets = JSON.parse(fs.readFileSync(path.join(result.out, 'ModelServing.assets.json'), 'utf8'));
  const images_ = Object.values<any>(assets.dockerImages);
  expect(images_.map((i) => Object.values<any>(i.destinations)[0].repositoryName)).toEqual(['iris-model-server', 'iris-model-server']);
  const server = images_.find((i) => i.displayName === 'Model/Task/Server/AssetImage');
  expect(server.source.dockerBuildArgs).toMatchObject({ MODEL_VERSION: 'iris-7' });

  const report = JSON.parse(fs.readFileSync(path.join(result.out, 'validation-report.json'), 'utf8'));
  expect(report.pluginReports.filter((r: any) => r.conclusion !== 'success')).toEqual([]);
}, 180_000);

test('every flag the CI workflow gives cdk synth and cdk deploy is one the real CDK CLI has', async () => {
  const workflow = fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'deploy.yml'), 'utf8');
  for (const command of ['synth', 'deploy']) {
    const help = await run(CDK, [command, '--help'], { cwd: ROOT, env: { ...process.env, CDK_DISABLE_VERSION_CHECK: 'true' }, timeoutMs: 60_000 });
    const flags = [...workflow.matchAll(new RegExp(`npx cdk ${command} (.+)$`, 'gm'))].flatMap((m) => m[1].match(/--[a-z-]+/g) ?? []);
    expect(flags.length).toBeGreaterThan(0);
    for (const flag of new Set(flags)) expect([command, flag, help.stdout.includes(flag)]).toEqual([command, flag, true]);
  }
}, 120_000);

