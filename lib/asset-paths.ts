import * as path from 'node:path';

/** The `assets/` folder shipped with this library: one Docker build context per folder. */
const ASSETS_DIR = path.join(__dirname, '..', 'assets');

export const MODEL_SERVER_DIR = path.join(ASSETS_DIR, 'model-server');
export const MODEL_FETCHER_DIR = path.join(ASSETS_DIR, 'model-fetcher');
/** The Lambda functions the constructs deploy, each bundled by `npm run build` into `dist/<name>/index.js`. */
export const FUNCTIONS_DIR = path.join(ASSETS_DIR, 'functions');
export const FUNCTIONS_DIST_DIR = path.join(FUNCTIONS_DIR, 'dist');
export const SAMPLE_MODEL_FILE = path.join(ASSETS_DIR, 'sample-model', 'iris.joblib');
