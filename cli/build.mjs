// Bundles the CLI into cli/dist/main.js, one file with its AWS SDK and cdk-assets dependencies,
// so the package has no runtime dependencies but aws-cdk-lib and constructs (jsii needs that).
import { build } from 'esbuild';

await build({
  entryPoints: ['cli/main.ts'],
  bundle: true,
  outfile: 'cli/dist/main.js',
  platform: 'node',
  target: 'node20',
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});
(await import('node:fs')).chmodSync('cli/dist/main.js', 0o755);
