import * as ecs from 'aws-cdk-lib/aws-ecs';
import { MODEL_FETCHER_DIR } from '../asset-paths';
import { assertBundleCurrent } from '../functions/bundle-sources';
import { BUNDLES } from '../functions/bundles';
import { imageAsset } from './serving-image';

/** The model fetcher image, built from `assets/model-fetcher` (its bundle comes from `npm run build`). */
export function modelFetcherImage(): ecs.ContainerImage {
  assertBundleCurrent(BUNDLES.modelFetcher);
  return imageAsset(MODEL_FETCHER_DIR);
}
