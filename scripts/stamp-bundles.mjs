// The last step of `npm run build`: stamps each bundle with a digest of the sources it was built
// from, which synth compares in a checkout (lib/bundle-sources.ts).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { BUNDLED_SOURCES, stampBundleSources } = require('../lib/bundle-sources.js');

for (const root of BUNDLED_SOURCES) stampBundleSources(root);
