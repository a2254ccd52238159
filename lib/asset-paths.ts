import * as path from 'node:path';

/**
 * Where everything this library ships lives, relative to the package root (the checkout, or the
 * installed npm package): every other module, script and test names these paths through here.
 */
export const PACKAGE_ROOT = path.join(__dirname, '..');
/** The `assets/` folder: one Docker build context or bundle per folder. */
const ASSETS_DIR = path.join(PACKAGE_ROOT, 'assets');

/** The model server's Docker build context (Dockerfile, Dockerfile.gpu, the Python package). */
export const MODEL_SERVER_DIR = path.join(ASSETS_DIR, 'model-server');
/** The model fetcher's Docker build context; its image copies the fetcher's bundle. */
export const MODEL_FETCHER_DIR = path.join(ASSETS_DIR, 'model-fetcher');
/** The Lambda functions' folder; each is bundled by `npm run build` into `dist/<name>/index.js`. */
export const FUNCTIONS_DIR = path.join(ASSETS_DIR, 'functions');
/** The sample iris model's folder: the model, its trainer and its golden requests. */
export const SAMPLE_MODEL_DIR = path.join(ASSETS_DIR, 'sample-model');
export const SAMPLE_MODEL_FILE = path.join(SAMPLE_MODEL_DIR, 'iris.joblib');
/** Its golden requests (see GoldenRequests). */
export const SAMPLE_GOLDEN_FILE = path.join(SAMPLE_MODEL_DIR, 'golden.jsonl');
