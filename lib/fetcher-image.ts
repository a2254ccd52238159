import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { MODEL_FETCHER_DIR } from './asset-paths';
import { assertBundleCurrent } from './bundle-sources';
import { imageAsset } from './serving-image';

/** The model fetcher image, built from `assets/model-fetcher` (its bundle comes from `npm run build`). */
export function modelFetcherImage(): ecs.ContainerImage {
  const bundle = path.join(MODEL_FETCHER_DIR, 'dist', 'fetcher.js');
  if (!fs.existsSync(bundle)) {
    throw new Error(`${bundle} is missing: run 'npm run build' (npm ci runs it) before synth, or pass 'fetcherImage'`);
  }
  assertBundleCurrent(MODEL_FETCHER_DIR);
  return imageAsset(MODEL_FETCHER_DIR);
}
