import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { FargateModelService, FargateModelServiceProps, GoldenRequests, ModelSource, Rollout } from '../../lib';
import { FUNCTIONS_DIR, MODEL_FETCHER_DIR } from '../../lib/asset-paths';
import * as bundleSources from '../../lib/bundle-sources';
import { BUNDLED_SOURCES, assertBundleCurrent, bundleSourcesDigest, stampBundleSources } from '../../lib/bundle-sources';
import { SAMPLE_GOLDEN } from '../../scripts/sample-model';

/** A bundled folder as a checkout has it: sources, a manifest, a bundle. */
function checkout(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-sources-'));
  fs.mkdirSync(path.join(root, 'src', 'lib'), { recursive: true });
  fs.mkdirSync(path.join(root, 'dist'));
  fs.writeFileSync(path.join(root, 'src', 'main.ts'), 'export const a = 1;\n');
  fs.writeFileSync(path.join(root, 'src', 'lib', 'util.ts'), 'export const b = 2;\n');
  fs.writeFileSync(path.join(root, 'package.json'), '{"name":"x"}\n');
  fs.writeFileSync(path.join(root, 'dist', 'main.js'), 'exports.a = 1;\n');
  return root;
}

test('a freshly stamped bundle passes; an edited, added or renamed source fails with what to run', () => {
  const root = checkout();
  stampBundleSources(root);
  expect(() => assertBundleCurrent(root)).not.toThrow();

  const edited = checkout();
  stampBundleSources(edited);
  fs.appendFileSync(path.join(edited, 'src', 'lib', 'util.ts'), 'export const c = 3;\n');
  expect(() => assertBundleCurrent(edited)).toThrow(`${path.join(edited, 'dist')} was built from other sources than those in src/: run 'npm run build' before synth`);

  const added = checkout();
  stampBundleSources(added);
  fs.writeFileSync(path.join(added, 'src', 'extra.ts'), '');
  expect(() => assertBundleCurrent(added)).toThrow(/other sources/);

  const renamed = checkout();
  stampBundleSources(renamed);
  fs.renameSync(path.join(renamed, 'src', 'main.ts'), path.join(renamed, 'src', 'main2.ts'));
  expect(() => assertBundleCurrent(renamed)).toThrow(/other sources/);

  const manifest = checkout();
  stampBundleSources(manifest);
  fs.writeFileSync(path.join(manifest, 'package.json'), '{"name":"x","dependencies":{"y":"1"}}\n');
  expect(() => assertBundleCurrent(manifest)).toThrow(/other sources/);
});

test('a checkout bundle without a stamp fails; a package without sources has nothing to check', () => {
  const unstamped = checkout();
  expect(() => assertBundleCurrent(unstamped)).toThrow(`${path.join(unstamped, 'dist')} has no build stamp: run 'npm run build' before synth`);

  const packaged = checkout();
  fs.rmSync(path.join(packaged, 'src'), { recursive: true });
  expect(() => assertBundleCurrent(packaged)).not.toThrow();
});

test('the digest does not depend on the bundle, an editor\'s files or other files in the folder', () => {
  const root = checkout();
  const before = bundleSourcesDigest(root);
  fs.writeFileSync(path.join(root, 'dist', 'main.js'), 'changed');
  fs.writeFileSync(path.join(root, 'README.md'), 'notes');
  fs.writeFileSync(path.join(root, 'src', '.main.ts.swp'), 'editor');
  fs.writeFileSync(path.join(root, 'src', 'main.ts~'), 'backup');
  expect(bundleSourcesDigest(root)).toBe(before);
});

test('this checkout\'s fetcher and function bundles are stamped from their current sources', () => {
  for (const root of BUNDLED_SOURCES) {
    expect(fs.existsSync(path.join(root, 'src'))).toBe(true);
    expect(() => assertBundleCurrent(root)).not.toThrow();
  }
});

test('synth checks the fetcher\'s bundle and the functions\' bundle wherever a service uses them', () => {
  const spy = jest.spyOn(bundleSources, 'assertBundleCurrent').mockImplementation((root) => {
    throw new Error(`stale: ${root}`);
  });
  try {
    const service = (props: Partial<FargateModelServiceProps>) => () => {
      const stack = new Stack(new App(), 'S', { env: { region: 'eu-west-1' } });
      new FargateModelService(stack, 'M', {
        model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'models'), 'm.joblib'),
        ...props,
      });
    };
    expect(service({})).toThrow(`stale: ${MODEL_FETCHER_DIR}`);
    // With its own fetcher image, a service has no bundle but the golden-request hook's.
    const fetcherImage = ecs.ContainerImage.fromRegistry('example.com/fetcher:1');
    expect(service({ fetcherImage })).not.toThrow();
    expect(service({ fetcherImage, rollout: Rollout.canary(), goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN) }))
      .toThrow(`stale: ${FUNCTIONS_DIR}`);
  } finally {
    spy.mockRestore();
  }
});
