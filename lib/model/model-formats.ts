import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../asset-paths';

/**
 * The model formats the built-in server loads, by name, with their file suffixes: read from the
 * server's own list (assets/model-server/model_server/loaders/formats.json), so the constructs,
 * `npm run local` and the server judge a model file alike.
 */
function modelFormats(): Record<string, string[]> {
  return JSON.parse(fs.readFileSync(path.join(MODEL_SERVER_DIR, 'model_server', 'loaders', 'formats.json'), 'utf8'));
}

/** Every file suffix the built-in server loads (`.joblib`, `.pt`, ...). */
export function modelFileSuffixes(): string[] {
  return Object.values(modelFormats()).flat();
}
