import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../asset-paths';

/** One model format the built-in server loads. */
interface ModelFormat {
  /** What it is, in words: 'a TorchScript model'. */
  readonly name: string;
  readonly suffixes: readonly string[];
  /** The built-in images that serve it: `cpu` (Dockerfile), `gpu` (Dockerfile.gpu). */
  readonly images: readonly string[];
}

/**
 * The model formats the built-in server loads, by name: read from the server's own list
 * (assets/model-server/model_server/loaders/formats.json), so the constructs, `npm run local` and
 * the server judge a model file alike.
 */
function modelFormats(): Record<string, ModelFormat> {
  return JSON.parse(fs.readFileSync(path.join(MODEL_SERVER_DIR, 'model_server', 'loaders', 'formats.json'), 'utf8'));
}

/**
 * Why the built-in `image` (`cpu` or `gpu`) would not start serving a model made of `files` (paths
 * below the model directory), or undefined when it would. The server serves MODEL_FILE when it is
 * set, else the one file with a suffix it knows (hidden files and folders aside), and then loads
 * it only if the image has the format's library (TorchScript needs the GPU image's PyTorch).
 */
export function modelFilesProblem(files: readonly string[], image: string, modelFile?: string): string | undefined {
  const formats = Object.values(modelFormats());
  const formatOf = (file: string) => formats.find((f) => f.suffixes.some((s) => file.endsWith(s)));
  const known = formats.flatMap((f) => f.suffixes).join(', ');
  let chosen = modelFile;
  if (chosen !== undefined) {
    if (!files.includes(chosen)) return `has no file '${chosen}', which MODEL_FILE names (it has ${files.slice(0, 5).join(', ')}${files.length > 5 ? ', ...' : ''})`;
  } else {
    const visible = files.filter((f) => !f.split('/').some((segment) => segment.startsWith('.')));
    const candidates = visible.filter((f) => formatOf(f));
    if (candidates.length === 0) {
      return files.length === 1
        ? `is '${files[0]}', which is not a model file the server reads (${known})`
        : `has no model file the server reads (${known}) among its ${files.length} files`;
    }
    if (candidates.length > 1) {
      return `has ${candidates.length} model files (${candidates.slice(0, 5).join(', ')}): set environment.MODEL_FILE to the one to serve`;
    }
    chosen = candidates[0];
  }
  const format = formatOf(chosen);
  if (!format) return `serves '${chosen}' (MODEL_FILE), which is not a model file the server reads (${known})`;
  if (!format.images.includes(image)) {
    const servers = format.images.map((i) => i.toUpperCase()).join(' or ');
    return `serves '${chosen}', ${format.name}, which only the ${servers} model server serves, not the ${image.toUpperCase()} one: ` +
      (format.images.includes('gpu') ? 'use GpuModelService' : `use ServingImage.fromModelServer({ gpu: ${format.images[0] === 'gpu'} })`);
  }
  return undefined;
}
