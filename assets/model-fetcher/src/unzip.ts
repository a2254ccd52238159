import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as yauzl from 'yauzl';
import { FetchError } from './errors';
import { Deadline } from './retry';

export interface ExtractOptions {
  /** The most entries (files and folders) the archive may hold. */
  readonly maxEntries: number;
  /** Extraction must be done by then (it is part of the download's time). */
  readonly deadline: Deadline;
  /** Aborts the extraction: SIGTERM, or the deadline passing. */
  readonly signal: AbortSignal;
}

/**
 * Extracts a zip archive into `destDir`, within bounds: at most `maxEntries` entries, and no more
 * bytes, by the sizes the archive declares, than the destination's file system has free (yauzl
 * refuses an entry whose real size differs from its declared one, so a zip bomb cannot lie its way
 * past this). yauzl also rejects absolute and `..` entry names (zip-slip). Returns the number of files.
 */
export async function extractZip(zipFile: string, destDir: string, options: ExtractOptions): Promise<number> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipFile, { lazyEntries: true, autoClose: false }, (err, z) => (err ? reject(err) : resolve(z!))),
  ).catch((err: Error) => {
    throw new FetchError(`the model archive is not a valid zip file: ${err.message}`);
  });
  try {
    const entries = await readEntries(zip, options.maxEntries);
    const declared = entries.reduce((sum, e) => sum + e.uncompressedSize, 0);
    const stats = await fs.statfs(destDir);
    const free = stats.bavail * stats.bsize;
    if (declared > free) {
      throw new FetchError(`the model archive unpacks to ${declared} bytes, but the model volume has ${free} bytes free`);
    }
    // The signal carries the deadline too: past it, the unpacking is what did not finish.
    const stopped = () => (options.deadline.remainingMs <= 0
      ? new FetchError(`unpacking the model archive did not finish within ${options.deadline.seconds} s (MODEL_FETCH_TIMEOUT_SECONDS)`)
      : options.signal.reason);
    let files = 0;
    for (const entry of entries) {
      if (options.signal.aborted || options.deadline.remainingMs <= 0) throw stopped();
      const target = path.join(destDir, entry.fileName);
      if (entry.fileName.endsWith('/')) {
        await fs.mkdir(target, { recursive: true });
        continue;
      }
      await fs.mkdir(path.dirname(target), { recursive: true });
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
        zip.openReadStream(entry, (err, s) => (err || !s ? reject(err ?? new Error(`cannot read ${entry.fileName}`)) : resolve(s))));
      // One entry may be large: the deadline and SIGTERM stop it mid-way, too.
      await pipeline(stream, createWriteStream(target, { flags: 'wx', mode: 0o644 }), { signal: options.signal }).catch((err: Error) => {
        throw options.signal.aborted ? stopped() : err;
      });
      files += 1;
    }
    return files;
  } catch (err) {
    throw err instanceof FetchError || options.signal.aborted ? err : new FetchError(`the model archive could not be extracted: ${(err as Error).message}`);
  } finally {
    zip.close();
  }
}

/** Every entry of the central directory, refusing an archive with more than `max`. */
function readEntries(zip: yauzl.ZipFile, max: number): Promise<yauzl.Entry[]> {
  if (zip.entryCount > max) {
    return Promise.reject(new FetchError(`the model archive has ${zip.entryCount} entries; at most ${max} are allowed (MODEL_MAX_FILES)`));
  }
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on('error', reject);
    zip.on('end', () => resolve(entries));
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.readEntry();
  });
}
