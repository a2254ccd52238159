// Builds every bundle in lib/bundles.ts's table with one esbuild recipe, and stamps each with what
// esbuild read (lib/bundle-sources.ts), which synth compares in a checkout. Runs in `npm run build`,
// after tsc has compiled lib/.
import { chmodSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const require = createRequire(import.meta.url);
const { BUNDLES } = require('../lib/bundles.js');
const { PACKAGE_ROOT } = require('../lib/asset-paths.js');
const { stampOf } = require('../lib/bundle-sources.js');

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
