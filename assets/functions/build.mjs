// Bundles each function into dist/<name>/index.js, the one file its Lambda asset holds.
import { build } from 'esbuild';

const FUNCTIONS = ['release-instances', 'golden-requests'];

for (const name of FUNCTIONS) {
  await build({
    entryPoints: [`src/${name}.ts`],
    outfile: `dist/${name}/index.js`,
    bundle: true,
    platform: 'node',
    target: 'node22',
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
}
