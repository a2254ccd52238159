import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FUNCTIONS_DIR, MODEL_FETCHER_DIR } from './asset-paths';

/**
 * The TypeScript the constructs ship as bundles: the model fetcher (its image copies
 * `dist/fetcher.js`) and the Lambda functions (`dist/<name>/index.js`). `npm run build` bundles
 * each and then stamps it with a digest of the sources it was built from (`dist/sources.sha256`).
 *
 * In a checkout, where the sources sit beside the bundle, synth refuses a bundle whose stamp does
 * not match its sources: an edit to the fetcher or a function without a build would otherwise
 * deploy the old code under the new source. The npm package ships bundles without sources, and
 * there is nothing to compare.
 */
export const BUNDLED_SOURCES: readonly string[] = [MODEL_FETCHER_DIR, FUNCTIONS_DIR];

/** What a bundle is built from, below its folder: its sources, its manifest and its build script. */
const SOURCE_ENTRIES = ['src', 'package.json', 'tsconfig.json', 'build.mjs'];
/** Source files by name: an editor's swap or backup file beside them is not a source. */
const SOURCE_FILE = /^[^.].*\.(ts|mts|cts|js|mjs|cjs|json)$/;
const STAMP = path.join('dist', 'sources.sha256');

/** The SHA-256 of a bundled folder's sources: every file's relative path and content, in path order. */
export function bundleSourcesDigest(root: string): string {
  const files: string[] = [];
  const walk = (relative: string): void => {
    const full = path.join(root, relative);
    if (!fs.existsSync(full)) return;
    if (fs.statSync(full).isDirectory()) {
      for (const entry of fs.readdirSync(full)) walk(path.join(relative, entry));
    } else if (SOURCE_FILE.test(path.basename(relative))) {
      files.push(relative.split(path.sep).join('/'));
    }
  };
  SOURCE_ENTRIES.forEach(walk);
  const hash = crypto.createHash('sha256');
  for (const file of files.sort()) {
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(path.join(root, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** Writes the stamp of a bundled folder (`npm run build`, after bundling). */
export function stampBundleSources(root: string): void {
  fs.writeFileSync(path.join(root, STAMP), `${bundleSourcesDigest(root)}\n`);
}

const checked = new Set<string>();

/**
 * Fails synth when a checkout's bundle was not built from the sources beside it (once per folder
 * per process). Without a `src` folder (the npm package) there is nothing to check.
 */
export function assertBundleCurrent(root: string): void {
  if (checked.has(root) || !fs.existsSync(path.join(root, 'src'))) return;
  const stampFile = path.join(root, STAMP);
  const stamp = fs.existsSync(stampFile) ? fs.readFileSync(stampFile, 'utf8').trim() : undefined;
  if (stamp !== bundleSourcesDigest(root)) {
    const why = stamp === undefined ? 'has no build stamp' : 'was built from other sources than those in src/';
    throw new Error(`${path.join(root, 'dist')} ${why}: run 'npm run build' before synth`);
  }
  checked.add(root);
}
