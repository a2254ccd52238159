import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { FargateModelService, ModelImageRepository, ModelSource, ServingImage } from '../../lib';
import { MODEL_FETCHER_DIR, SAMPLE_MODEL_FILE } from '../../lib/asset-paths';
import { requireDockerEngine } from '../../scripts/docker';
import { ensureBaseImage } from '../helpers/base-images';
import { errorLine, requireBuiltCli, runCli } from '../helpers/cli';
import { ACCOUNT, ASSUMED_ACCESS_KEY, EmulatedEcr } from '../helpers/emulated-ecr';
import { LocalRegistry } from '../helpers/registry';
import { LocalS3 } from '../helpers/s3-server';

/**
 * `cdk-model-serving publish` on a real synthesized app: the real cdk-assets builds the real
 * images with the real Docker engine and pushes them to a real registry on 127.0.0.1, and uploads
 * the file assets to a real S3-compatible server. Only the ECR and STS APIs are emulated.
 */
const REPO = 'iris-model-server';
const REGION = 'us-east-1';
const ASSETS_BUCKET = `cdk-hnb659fds-assets-${ACCOUNT}-${REGION}`;
const PUBLISHING_ROLE = `arn:aws:iam::${ACCOUNT}:role/cdk-hnb659fds-image-publishing-role-${ACCOUNT}-${REGION}`;

let registry: LocalRegistry;
let ecr: EmulatedEcr;
let s3: LocalS3;
let workDir: string;
let assembly: string;
let env: Record<string, string>;

beforeAll(async () => {
  requireBuiltCli();
  await requireDockerEngine();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const [nodeBase, pythonBase] = [await ensureBaseImage('node', log), await ensureBaseImage('python', log)];
  registry = await LocalRegistry.start();
  ecr = await new EmulatedEcr(registry, REGION).start();
  ecr.repositories.add(REPO);
  s3 = await LocalS3.start();
  await s3.createBucket(ASSETS_BUCKET);
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'publish-'));
  env = {
    ...ecr.env(),
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    HOME: workDir,
    DOCKER_CONFIG: path.join(workDir, 'docker'), // docker login writes here, not into the machine's config
  };

  // The app as a team would write it for CI: the serving stack's images go to the model repository.
  const app = new App({ outdir: path.join(workDir, 'cdk.out') });
  const stack = new Stack(app, 'Iris', { env: { account: ACCOUNT, region: REGION }, synthesizer: ModelImageRepository.synthesizerFor(REPO) });
  new FargateModelService(stack, 'Model', {
    model: ModelSource.fromAsset(SAMPLE_MODEL_FILE),
    // CI cannot pull the official base images; the Dockerfiles are the production ones.
    image: ServingImage.fromModelServer({ modelVersion: 'iris-ci', buildArgs: { BASE_IMAGE: pythonBase, INSTALL_REQUIREMENTS: 'false' } }),
    fetcherImage: ecs.ContainerImage.fromAsset(MODEL_FETCHER_DIR, { buildArgs: { BASE_IMAGE: nodeBase }, platform: Platform.LINUX_AMD64 }),
  });
  assembly = app.synth().directory;
}, 1_800_000);

afterAll(async () => {
  await s3?.stop();
  await ecr?.stop();
  await registry?.stop();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
});

describe('publish, then scan-gate the published images', () => {
  let images: any[];

  beforeAll(async () => {
    const result = await runCli(['publish', '--app', assembly, '--add-tag', 'git-1a2b3c4', '--json'], env, 1_500_000);
    if (result.code !== 0) throw new Error(`publish failed (${result.code}): ${result.stderr.slice(-3000)}`);
    images = JSON.parse(result.stdout).images;
  }, 1_600_000);

  test('both images are in the registry, and the printed digests are theirs', async () => {
    expect(images.map((i) => i.displayName).sort()).toEqual(['Model/Task/ModelFetcher/AssetImage', 'Model/Task/Server/AssetImage']);
    for (const image of images) {
      expect(image.repositoryName).toBe(REPO);
      expect(image.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(await registry.digestOf(REPO, image.imageTag)).toBe(image.imageDigest);
      expect(image.imageUri).toBe(`${registry.host}/${REPO}@${image.imageDigest}`);
    }
    expect(images[0].imageDigest).not.toBe(images[1].imageDigest);
  });

  test('each image also carries a tag that traces it to the build', async () => {
    for (const image of images) {
      const trace = image.displayName === 'Model/Task/Server/AssetImage' ? 'git-1a2b3c4-model-task-server' : 'git-1a2b3c4-model-task-modelfetcher';
      expect(image.tags).toEqual([image.imageTag, trace]);
      expect(await registry.digestOf(REPO, trace)).toBe(image.imageDigest);
    }
  });

  test('the pushed images are the built ones: their configuration, read from the registry, has the labels, user and health check', async () => {
    const server = images.find((i) => i.displayName === 'Model/Task/Server/AssetImage');
    const config = await registry.imageConfig(REPO, server.imageDigest);
    expect(config.Labels).toMatchObject({ 'ai.model.version': 'iris-ci' });
    expect(config.User).toBe('10001:10001');
    expect(config.Healthcheck.Test).toEqual(['CMD', 'python3', '-m', 'model_server.healthcheck']);
    const fetcher = images.find((i) => i.displayName === 'Model/Task/ModelFetcher/AssetImage');
    expect((await registry.imageConfig(REPO, fetcher.imageDigest)).User).toBe('10001:10001');
  });

  test('the file assets (the model, the template) went to the assets bucket', async () => {
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: ASSETS_BUCKET }));
    const keys = (listed.Contents ?? []).map((o) => o.Key);
    expect(keys).toEqual(expect.arrayContaining([expect.stringMatching(/\.joblib$/), expect.stringMatching(/\.json$/)]));
  });

  test('cdk-assets worked through the bootstrap image-publishing role, as in AWS', () => {
    const assumed = ecr.calls.filter((c) => c.action === 'AssumeRole').map((c) => c.input.RoleArn);
    expect(new Set(assumed)).toEqual(new Set([PUBLISHING_ROLE, PUBLISHING_ROLE.replace('image-publishing', 'file-publishing')]));
    const ecrCalls = ecr.calls.filter((c) => c.service === 'ecr');
    expect(ecrCalls.map((c) => c.action)).toEqual(expect.arrayContaining(['GetAuthorizationToken', 'DescribeRepositories', 'DescribeImages', 'BatchGetImage', 'PutImage']));
    expect(ecrCalls.every((c) => c.accessKeyId === ASSUMED_ACCESS_KEY)).toBe(true);
  });

  test('publishing again builds and pushes nothing, and keeps the tags', async () => {
    const result = await runCli(['publish', '--app', assembly, '--add-tag', 'git-1a2b3c4', '--add-tag', 'git-5d6e7f8'], env, 600_000);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/upload: Push/);
    expect(result.stderr).toMatch(/found: Found/);
    for (const image of images) {
      expect(result.stdout).toContain(image.imageDigest);
    }
    expect(result.stdout).toMatch(/git-1a2b3c4-model-task-server,git-5d6e7f8-model-task-server/);
  }, 600_000);

  test('a tag that already names another image is refused, never moved', async () => {
    const [server, fetcher] = [images.find((i) => i.displayName.includes('Server')), images.find((i) => i.displayName.includes('Fetcher'))];
    const manifest = (await registry.manifest(REPO, fetcher.imageDigest))!;
    await registry.putManifest(REPO, 'git-clash-model-task-server', manifest.body, manifest.mediaType);
    const result = await runCli(['publish', '--app', assembly, '--add-tag', 'git-clash'], env, 600_000);
    expect(result.code).toBe(1);
    expect(errorLine(result)).toBe(`cdk-model-serving publish: tag 'git-clash-model-task-server' already names another image in ${REPO}, and tags there are immutable: give each build its own --add-tag, e.g. git-<commit>`);
    expect(await registry.digestOf(REPO, 'git-clash-model-task-server')).toBe(fetcher.imageDigest);
    expect(server.imageDigest).not.toBe(fetcher.imageDigest);
  }, 600_000);

  test('scan-gate --app gates every image of the assembly, through the same role', async () => {
    for (const image of images) ecr.scan(image.imageDigest, { inProgressPolls: 1, findings: [{ name: 'CVE-2023-0001', severity: 'LOW', packageName: 'tar', packageVersion: '1.34' }] });
    const before = ecr.calls.length;
    const clean = await runCli(['scan-gate', '--app', assembly, '--interval', '0.2', '--timeout', '30'], env);
    expect(clean.code).toBe(0);
    for (const image of images) expect(clean.stdout).toContain(`${REPO}@${image.imageDigest}: COMPLETE, 1 finding(s): LOW 1`);
    expect(ecr.calls.slice(before).filter((c) => c.service === 'ecr').every((c) => c.accessKeyId === ASSUMED_ACCESS_KEY)).toBe(true);

    const server = images.find((i) => i.displayName.includes('Server'));
    ecr.scan(server.imageDigest, { findings: [{ name: 'CVE-2024-9999', severity: 'CRITICAL', packageName: 'openssl', packageVersion: '3.0.11' }] });
    const blocked = await runCli(['scan-gate', '--app', assembly, '--interval', '0.2', '--timeout', '30'], env);
    expect(blocked.code).toBe(1);
    expect(errorLine(blocked)).toContain(`1 finding(s) at or above HIGH (1 CRITICAL) in ${REPO}@${server.imageDigest}`);
  });
});

test('a missing repository fails in one line that names it, before anything is built', async () => {
  const app = new App({ outdir: path.join(workDir, 'missing.out') });
  const stack = new Stack(app, 'Missing', { env: { account: ACCOUNT, region: REGION }, synthesizer: ModelImageRepository.synthesizerFor('not-deployed-yet') });
  new DockerImageAsset(stack, 'Image', { directory: MODEL_FETCHER_DIR });
  const result = await runCli(['publish', '--app', app.synth().directory], env, 300_000);
  expect(result.code).toBe(1);
  expect(errorLine(result)).toMatch(/^cdk-model-serving publish: asset \S+ failed to publish: ECR repository not found \(RepositoryNotFoundException\): no repository named 'not-deployed-yet'; deploy the stack that creates it first/);
  expect(result.stderr).not.toMatch(/Step 1\//); // no docker build ran
}, 300_000);

test('a repository adopted without immutable tags or scan on push fails in one line with both fixes, before anything is built', async () => {
  ecr.repositories.add('adopted');
  ecr.settings.set('adopted', { imageTagMutability: 'MUTABLE', scanOnPush: false });
  const app = new App({ outdir: path.join(workDir, 'adopted.out') });
  const stack = new Stack(app, 'Adopted', { env: { account: ACCOUNT, region: REGION }, synthesizer: ModelImageRepository.synthesizerFor('adopted') });
  new DockerImageAsset(stack, 'Image', { directory: MODEL_FETCHER_DIR });
  const result = await runCli(['publish', '--app', app.synth().directory], env, 300_000);
  expect(result.code).toBe(1);
  expect(errorLine(result)).toBe("cdk-model-serving publish: ECR repository 'adopted' lacks the settings this pipeline relies on: " +
    'its tags are MUTABLE, so an image\'s tag could be moved to other bytes; it does not scan on push, so the scan gate would wait for a scan that never comes. ' +
    '(A repository adopted with --import-existing-resources keeps its own settings.) Set them with ' +
    "'aws ecr put-image-tag-mutability --repository-name adopted --image-tag-mutability IMMUTABLE' and " +
    "'aws ecr put-image-scanning-configuration --repository-name adopted --image-scanning-configuration scanOnPush=true', then publish again");
  expect(result.stderr).not.toMatch(/Step 1\//); // no docker build ran
  expect(ecr.calls.filter((c) => c.action === 'PutImage' && c.input.repositoryName === 'adopted')).toEqual([]);
}, 300_000);

test('a directory that is not a cloud assembly is named as such', async () => {
  const result = await runCli(['publish', '--app', path.join(workDir, 'nothing-here')], env);
  expect(result.code).toBe(1);
  expect(errorLine(result)).toContain("is not a cloud assembly (it has no manifest.json): run 'cdk synth' first");
});
