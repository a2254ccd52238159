// Builds every bundle in lib/functions/bundles.ts's table with one esbuild recipe, and stamps each with what
// esbuild read (lib/functions/bundle-sources.ts), which synth compares in a checkout. Runs in `npm run build`,
// after tsc has compiled lib/.
import { chmodSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { PACKAGE_ROOT } from '../lib/asset-paths.js';
import { stampOf } from '../lib/functions/bundle-sources.js';
import { BUNDLES } from '../lib/functions/bundles.js';

for (const bundle of Object.values(BUNDLES)) {
  const { metafile } = await build({
    absWorkingDir: PACKAGE_ROOT,
    entryPoints: [bundle.entry],
    outfile: bundle.outfile,
    bundle: true,
    platform: 'node',
    target: bundle.target,
    minifySyntax: true,
    minifyWhitespace: bundle.name !== 'cli',
    // The licenses of the packages bundled in, in a file beside the bundle.
    legalComments: 'external',
    metafile: true,
    logLevel: 'warning',
  });
  writeFileSync(`${PACKAGE_ROOT}/${bundle.stamp}`, `${JSON.stringify(stampOf(Object.keys(metafile.inputs)), null, 1)}\n`);
  if (bundle.name === 'cli') chmodSync(`${PACKAGE_ROOT}/${bundle.outfile}`, 0o755);
}
