import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../asset-paths';
import { Bundle } from './bundles';

/**
 * What a bundle was built from, as `npm run build` records it beside the bundle: the SHA-256 of
 * every file of this repository that esbuild read (its metafile's inputs), and the version of
 * every npm package it read from.
 */
export interface BundleStamp {
  /** SHA-256 by path relative to the package root. */
  readonly sources: Record<string, string>;
  /** Version by package folder relative to the package root (`node_modules/@aws-sdk/client-s3`). */
  readonly packages: Record<string, string>;
}

/** The package folder of a file below node_modules (`node_modules/@scope/name`), else undefined. */
function packageFolder(file: string): string | undefined {
  const parts = file.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return undefined;
  return parts.slice(0, at + (parts[at + 1]?.startsWith('@') ? 3 : 2)).join('/');
}

function sha256(file: string): string | undefined {
  return fs.existsSync(file) ? crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') : undefined;
}

function packageVersion(root: string, folder: string): string | undefined {
  const manifest = path.join(root, folder, 'package.json');
  return fs.existsSync(manifest) ? JSON.parse(fs.readFileSync(manifest, 'utf8')).version : undefined;
}

/** The stamp of the inputs esbuild's metafile lists (paths relative to `root`, where esbuild ran). */
export function stampOf(inputs: readonly string[], root: string = PACKAGE_ROOT): BundleStamp {
  const sources: Record<string, string> = {};
  const packages: Record<string, string> = {};
  for (const input of [...inputs].sort()) {
    const folder = packageFolder(input);
    if (folder) packages[folder] = packageVersion(root, folder) ?? 'unknown';
    else sources[input] = sha256(path.join(root, input))!;
  }
  return { sources, packages };
}

/** What differs between a stamp and the files as they are now: one phrase per difference. */
function staleInputs(stamp: BundleStamp, root: string = PACKAGE_ROOT): string[] {
  const stale: string[] = [];
  for (const [file, digest] of Object.entries(stamp.sources)) {
    const now = sha256(path.join(root, file));
    if (now !== digest) stale.push(now === undefined ? `${file} is gone` : `${file} changed`);
  }
  for (const [folder, version] of Object.entries(stamp.packages)) {
    const now = packageVersion(root, folder);
    if (now !== version) stale.push(`${folder} is ${now ?? 'gone'}, not ${version}`);
  }
  return stale;
}

const checked = new Set<string>();

/**
 * Fails synth when a checkout's bundle was not built from the files it imports as they are now:
 * an edit to the fetcher, a function or anything they import (lib/rollout/golden-file.ts, say) without a
 * build would otherwise deploy the old code under the new source. The npm package ships bundles
 * without their sources or stamps, so there is nothing to compare. Checked once per bundle per process.
 */
export function assertBundleCurrent(bundle: Bundle, root: string = PACKAGE_ROOT): void {
  const key = `${root}:${bundle.name}`;
  if (checked.has(key) || !fs.existsSync(path.join(root, bundle.entry))) return;
  const output = path.join(root, bundle.outfile);
  const stampFile = path.join(root, bundle.stamp);
  if (!fs.existsSync(output) || !fs.existsSync(stampFile)) {
    throw new Error(`${bundle.outfile} ${fs.existsSync(output) ? 'has no build stamp' : 'is missing'}: run 'npm run build' before synth`);
  }
  const stale = staleInputs(JSON.parse(fs.readFileSync(stampFile, 'utf8')), root);
  if (stale.length > 0) {
    throw new Error(`${bundle.outfile} was built from other sources (${stale.slice(0, 3).join('; ')}` +
      `${stale.length > 3 ? `; ${stale.length - 3} more` : ''}): run 'npm run build' before synth`);
  }
  checked.add(key);
}
