import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, ModelSource, ServingImage } from '../../lib';
import { MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { containers, templateOf } from '../helpers/stack';

function withImage(image?: ServingImage) {
  return (stack: Stack) => new FargateModelService(stack, 'Model', {
    model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'team-models'), 'm.joblib'),
    image,
  });
}

/** The `name==version` line a requirement file of the server pins `name` with. */
function serverPin(file: string, name: string): string {
  return fs.readFileSync(path.join(MODEL_SERVER_DIR, file), 'utf8').split('\n').find((l) => l.startsWith(`${name}==`))!;
}

/** The Docker image assets of a synthesized app, from its asset manifest. */
function dockerAssets(build: (stack: Stack) => void): any[] {
  const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-out-')) });
  build(new Stack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } }));
  const assembly = app.synth();
  const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'Test.assets.json'), 'utf8'));
  return Object.values(manifest.dockerImages).map((a: any) => a.source);
}

test('by default both images are built from this library\'s assets for linux/amd64', () => {
  const sources = dockerAssets((stack) => withImage()(stack));
  expect(sources).toHaveLength(2);
  const dirs = sources.map((s) => s.directory);
  for (const s of sources) expect(s.platform).toBe('linux/amd64');
  expect(sources.find((s) => s.dockerBuildArgs?.MODEL_VERSION)).toMatchObject({ dockerBuildArgs: { MODEL_VERSION: 'unversioned' } });
  expect(dirs).toHaveLength(2);
});

test('fromModelServer records the model version as a build argument', () => {
  const sources = dockerAssets((stack) => withImage(ServingImage.fromModelServer({ modelVersion: 'iris-v3' }))(stack));
  expect(sources.map((s) => s.dockerBuildArgs?.MODEL_VERSION)).toContain('iris-v3');
});

describe('fromModelServer extraRequirements: the packages a model needs, without copying the asset folder', () => {
  test('reach the build as one EXTRA_REQUIREMENTS argument, on the library\'s own build context', () => {
    const sources = dockerAssets((stack) => withImage(ServingImage.fromModelServer({ extraRequirements: ['lightgbm==4.7.0', 'xgboost[scikit-learn]==3.1.2'] }))(stack));
    const server = sources.find((s) => s.dockerBuildArgs?.MODEL_VERSION);
    expect(server.dockerBuildArgs.EXTRA_REQUIREMENTS).toBe('lightgbm==4.7.0 xgboost[scikit-learn]==3.1.2');
    // Without them, no argument: the default image's asset hash stays what it was.
    const plain = dockerAssets((stack) => withImage()(stack)).find((s) => s.dockerBuildArgs?.MODEL_VERSION);
    expect(plain.dockerBuildArgs).toEqual({ MODEL_VERSION: 'unversioned' });
  });

  test('both Dockerfiles install them in a layer of their own, after the server\'s pins', () => {
    for (const file of ['Dockerfile', 'Dockerfile.gpu']) {
      const text = fs.readFileSync(path.join(MODEL_SERVER_DIR, file), 'utf8');
      const pins = text.indexOf('-r requirements');
      const extra = text.indexOf('ARG EXTRA_REQUIREMENTS');
      expect(pins).toBeGreaterThan(0);
      expect(extra).toBeGreaterThan(pins);
      expect(text.slice(extra)).toMatch(/pip install --(prefix=\/install --)?only-binary=:all: \$constraint \$EXTRA_REQUIREMENTS/);
    }
  });

  test.each<[string, string[], boolean, string]>([
    ['a bare name', ['lightgbm'], false, "'lightgbm' is not an exact pin; write it as name==version (e.g. 'lightgbm==4.7.0')"],
    ['a range', ['xgboost>=2'], false, "'xgboost>=2' is not an exact pin"],
    ['shell text', ['lightgbm==4.7.0; rm -rf /'], false, "'lightgbm==4.7.0; rm -rf /' is not an exact pin"],
    ['an option', ['--index-url=http://evil'], false, "'--index-url=http://evil' is not an exact pin"],
    ['a package the server pins', ['NumPy==1.26.4'], false,
      `'NumPy==1.26.4': the server pins ${serverPin('requirements.txt', 'numpy')} (requirements.txt); leave it out, the model gets the server's version`],
    ['one the GPU image pins', ['torch==2.3.0'], true, `'torch==2.3.0': the server pins ${serverPin('requirements-gpu.txt', 'torch')} (requirements-gpu.txt)`],
    ['a package twice', ['lightgbm==4.7.0', 'LightGBM==4.6.0'], false, "'LightGBM==4.6.0': LightGBM is listed twice"],
  ])('%s fails synth with what to write instead', (_name, extraRequirements, gpu, message) => {
    expect(() => ServingImage.fromModelServer({ extraRequirements, gpu })).toThrow(`ServingImage.fromModelServer: invalid 'extraRequirements': ${message}`);
  });
});

test('fromDirectory builds a team\'s own context for linux/amd64, with no built-in health check or user', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctx-'));
  fs.writeFileSync(path.join(dir, 'Dockerfile.serve'), 'FROM scratch\n');
  const sources = dockerAssets((stack) => withImage(ServingImage.fromDirectory(dir, { file: 'Dockerfile.serve' }))(stack));
  expect(sources.find((s) => s.dockerFile === 'Dockerfile.serve')).toMatchObject({ platform: 'linux/amd64' });
  const server = containers(templateOf(withImage(ServingImage.fromDirectory(dir, { file: 'Dockerfile.serve' })))).server;
  expect(server.HealthCheck).toBeUndefined();
  expect(server.User).toBeUndefined();
});

test('fromDirectory without a Dockerfile fails synth naming the missing file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctx-'));
  expect(() => ServingImage.fromDirectory(dir)).toThrow(
    `ServingImage.fromDirectory: invalid 'directory': ${path.join(dir, 'Dockerfile')} does not exist; give a Docker build context that contains it`,
  );
});

test('fromEcrRepository uses the given tag or digest, and the execution role may pull it', () => {
  const template = templateOf((stack) => {
    const repo = ecr.Repository.fromRepositoryName(stack, 'Repo', 'team/model-server');
    withImage(ServingImage.fromEcrRepository(repo, 'sha256:' + 'b'.repeat(64)))(stack);
  });
  expect(JSON.stringify(containers(template).server.Image)).toContain('team/model-server@sha256:' + 'b'.repeat(64));
  const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));
  expect(policies).toContain('ecr:BatchGetImage');
  expect(policies).toContain(':repository/team/model-server');
});

test('fromRegistry uses the image name as is', () => {
  const template = templateOf(withImage(ServingImage.fromRegistry('ghcr.io/team/server:1.2.0')));
  expect(containers(template).server.Image).toBe('ghcr.io/team/server:1.2.0');
});
