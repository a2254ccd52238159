import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, ModelSource, ServingImage } from '../../lib';
import { containers, templateOf } from '../helpers/stack';

function withImage(image?: ServingImage) {
  return (stack: Stack) => new FargateModelService(stack, 'Model', {
    model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'team-models'), 'm.joblib'),
    image,
  });
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
