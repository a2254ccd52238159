import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { buildSync } from 'esbuild';
import { FargateModelService, FargateModelServiceProps, GoldenRequests, ModelSource, Rollout } from '../../lib';
import { PACKAGE_ROOT, SAMPLE_GOLDEN_FILE } from '../../lib/asset-paths';
import * as bundleSources from '../../lib/functions/bundle-sources';
import { assertBundleCurrent, BundleStamp, stampOf } from '../../lib/functions/bundle-sources';
import { Bundle, BUNDLES } from '../../lib/functions/bundles';

/**
 * A checkout in miniature: a function whose entry imports a module from outside its folder (as the
 * golden-request function imports lib/golden-file.ts) and a package from node_modules, bundled
 * and stamped the way `npm run build` does (scripts/bundle.mjs).
 */
function checkout(): { root: string; bundle: Bundle; build: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-sources-'));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  };
  write('lib/shared.ts', 'export const answer = 42;\n');
  write('fn/src/handler.ts', "import { answer } from '../../lib/shared';\nimport { left } from 'pad';\nexport const handler = () => left(answer);\n");
  write('node_modules/pad/package.json', '{"name":"pad","version":"1.0.0","main":"index.js"}\n');
  write('node_modules/pad/index.js', 'exports.left = (x) => " " + x;\n');
  const bundle: Bundle = { name: 'fn', entry: 'fn/src/handler.ts', outfile: 'fn/dist/fn/index.js', target: 'node22', stamp: 'fn/dist/fn.sources.json' };
  const build = () => {
    const { metafile } = buildSync({ absWorkingDir: root, entryPoints: [bundle.entry], outfile: bundle.outfile, bundle: true, platform: 'node', metafile: true, logLevel: 'silent' });
    write(bundle.stamp, JSON.stringify(stampOf(Object.keys(metafile!.inputs), root)));
  };
  build();
  return { root, bundle, build };
}

test('the stamp names every file of the repository the bundle read, and every package, by version', () => {
  const { root, bundle } = checkout();
  const stamp: BundleStamp = JSON.parse(fs.readFileSync(path.join(root, bundle.stamp), 'utf8'));
  expect(Object.keys(stamp.sources)).toEqual(['fn/src/handler.ts', 'lib/shared.ts']);
  expect(stamp.packages).toEqual({ 'node_modules/pad': '1.0.0' });
  expect(() => assertBundleCurrent(bundle, root)).not.toThrow();
});

test('an edited import outside the bundle\'s folder makes synth refuse the bundle until it is rebuilt', () => {
  const { root, bundle, build } = checkout();
  fs.appendFileSync(path.join(root, 'lib', 'shared.ts'), 'export const more = 1;\n');
  expect(() => assertBundleCurrent(bundle, root))
    .toThrow("fn/dist/fn/index.js was built from other sources (lib/shared.ts changed): run 'npm run build' before synth");
  build();
  expect(() => assertBundleCurrent(bundle, root)).not.toThrow();
});

test('an edited entry, a removed import and another package version are each named', () => {
  const entry = checkout();
  fs.appendFileSync(path.join(entry.root, 'fn', 'src', 'handler.ts'), '// edited\n');
  expect(() => assertBundleCurrent(entry.bundle, entry.root)).toThrow('(fn/src/handler.ts changed)');

  const removed = checkout();
  fs.rmSync(path.join(removed.root, 'lib', 'shared.ts'));
  expect(() => assertBundleCurrent(removed.bundle, removed.root)).toThrow('(lib/shared.ts is gone)');

  const upgraded = checkout();
  fs.writeFileSync(path.join(upgraded.root, 'node_modules', 'pad', 'package.json'), '{"name":"pad","version":"2.0.0"}');
  expect(() => assertBundleCurrent(upgraded.bundle, upgraded.root)).toThrow('(node_modules/pad is 2.0.0, not 1.0.0)');
});

test('files the bundle never read, the bundle itself and editors\' files leave it current', () => {
  const { root, bundle } = checkout();
  fs.writeFileSync(path.join(root, 'lib', 'unrelated.ts'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(root, 'fn', 'src', '.handler.ts.swp'), 'editor');
  fs.writeFileSync(path.join(root, bundle.outfile), 'changed');
  expect(() => assertBundleCurrent(bundle, root)).not.toThrow();
});

test('a checkout bundle without a stamp fails; a package without sources has nothing to check', () => {
  const unstamped = checkout();
  fs.rmSync(path.join(unstamped.root, unstamped.bundle.stamp));
  expect(() => assertBundleCurrent(unstamped.bundle, unstamped.root)).toThrow("fn/dist/fn/index.js has no build stamp: run 'npm run build' before synth");

  const packaged = checkout();
  fs.rmSync(path.join(packaged.root, 'fn', 'src'), { recursive: true });
  fs.rmSync(path.join(packaged.root, packaged.bundle.stamp));
  expect(() => assertBundleCurrent(packaged.bundle, packaged.root)).not.toThrow();
});

test('this checkout\'s bundles are stamped from their current sources, the golden-request checker among them', () => {
  for (const bundle of Object.values(BUNDLES)) {
    expect(() => assertBundleCurrent(bundle)).not.toThrow();
  }
  const golden: BundleStamp = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, BUNDLES.goldenRequests.stamp), 'utf8'));
  expect(Object.keys(golden.sources)).toContain('lib/rollout/golden-file.ts');
});

test('synth checks the fetcher\'s bundle and the functions\' bundles wherever a service uses them', () => {
  const spy = jest.spyOn(bundleSources, 'assertBundleCurrent').mockImplementation((bundle) => {
    throw new Error(`stale: ${bundle.name}`);
  });
  try {
    const service = (props: Partial<FargateModelServiceProps>) => () => {
      const stack = new Stack(new App(), 'S', { env: { region: 'eu-west-1' } });
      new FargateModelService(stack, 'M', {
        model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'models'), 'm.joblib'),
        ...props,
      });
    };
    expect(service({})).toThrow('stale: model-fetcher');
    // With its own fetcher image, a service has no bundle but the golden-request hook's.
    const fetcherImage = ecs.ContainerImage.fromRegistry('example.com/fetcher:1');
    expect(service({ fetcherImage })).not.toThrow();
    expect(service({ fetcherImage, rollout: Rollout.canary(), goldenRequests: GoldenRequests.fromFile(SAMPLE_GOLDEN_FILE) }))
      .toThrow('stale: golden-requests');
  } finally {
    spy.mockRestore();
  }
});
