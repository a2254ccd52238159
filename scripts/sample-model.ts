import * as path from 'node:path';
import { SAMPLE_MODEL_FILE } from '../lib/asset-paths';

/** The sample iris model shipped in assets/sample-model, as the tests, benchmarks and tools use it. */
export const SAMPLE_MODEL = SAMPLE_MODEL_FILE;
/** Its folder (the model, its trainer and its golden requests). */
export const SAMPLE_MODEL_DIR = path.dirname(SAMPLE_MODEL_FILE);
/** Its golden requests (see GoldenRequests). */
export const SAMPLE_GOLDEN = path.join(SAMPLE_MODEL_DIR, 'golden.jsonl');
