import * as path from 'node:path';
import { FUNCTIONS_DIR, MODEL_FETCHER_DIR, PACKAGE_ROOT } from '../asset-paths';

/** One bundle that `npm run build` makes with esbuild: one entry, one output file, one Node target. */
export interface Bundle {
  readonly name: string;
  /** The entry point, relative to the package root. */
  readonly entry: string;
  /** The bundle, relative to the package root. */
  readonly outfile: string;
  /** esbuild's target: the oldest Node.js the bundle runs on. */
  readonly target: string;
  /** The stamp of the sources it was built from, relative to the package root (outside any asset folder). */
  readonly stamp: string;
}

const relative = (file: string) => path.relative(PACKAGE_ROOT, file).split(path.sep).join('/');
const functionBundle = (name: string): Bundle => ({
  name,
  entry: relative(path.join(FUNCTIONS_DIR, 'src', `${name}.ts`)),
  // The function's asset is this file's folder, so the stamp lives beside the folder, not in it.
  outfile: relative(path.join(FUNCTIONS_DIR, 'dist', name, 'index.js')),
  // The oldest Node.js runtime Lambda still runs new functions on.
  target: 'node22',
  stamp: relative(path.join(FUNCTIONS_DIR, 'dist', `${name}.sources.json`)),
});

/**
 * Every bundle, in one table: `scripts/bundle.mjs` builds and stamps them, and synth checks the
 * stamps of the ones a stack deploys (lib/functions/bundle-sources.ts).
 */
export const BUNDLES = {
  /** The `cdk-model-serving` CLI: the package's `bin`, on the Node.js the package supports. */
  cli: { name: 'cli', entry: 'cli/main.ts', outfile: 'cli/dist/main.js', target: 'node20', stamp: 'cli/dist/main.sources.json' },
  /** The model fetcher: its image runs Node.js 22, and the integration tests run the same bundle on Node.js 20. */
  modelFetcher: {
    name: 'model-fetcher',
    entry: relative(path.join(MODEL_FETCHER_DIR, 'src', 'main.ts')),
    outfile: relative(path.join(MODEL_FETCHER_DIR, 'dist', 'fetcher.js')),
    target: 'node20',
    stamp: relative(path.join(MODEL_FETCHER_DIR, 'dist', 'fetcher.sources.json')),
  },
  releaseInstances: functionBundle('release-instances'),
  goldenRequests: functionBundle('golden-requests'),
} satisfies Record<string, Bundle>;

/** A bundle's output file, as an absolute path. */
export function bundleFile(bundle: Bundle): string {
  return path.join(PACKAGE_ROOT, bundle.outfile);
}

/** The model fetcher's bundle, which its image copies and the integration tests run. */
export const MODEL_FETCHER_BUNDLE = bundleFile(BUNDLES.modelFetcher);
