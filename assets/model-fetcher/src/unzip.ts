import { createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as yauzl from 'yauzl';
import { FetchError } from './errors';

/**
 * Extracts a zip archive into `destDir`. yauzl rejects absolute and `..` entry names
 * (zip-slip) and entries whose sizes disagree with the central directory.
 */
export async function extractZip(zipFile: string, destDir: string): Promise<number> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipFile, { lazyEntries: true, autoClose: true }, (err, z) => (err ? reject(err) : resolve(z!))),
  ).catch((err: Error) => {
    throw new FetchError(`the model archive is not a valid zip file: ${err.message}`);
  });

  let files = 0;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      zip.close();
      reject(err instanceof FetchError ? err : new FetchError(`the model archive could not be extracted: ${err.message}`));
    };
    zip.on('error', fail);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      const target = path.join(destDir, entry.fileName);
      if (entry.fileName.endsWith('/')) {
        fs.mkdir(target, { recursive: true }).then(() => zip.readEntry(), fail);
        return;
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) return fail(err ?? new Error(`cannot read ${entry.fileName}`));
        fs.mkdir(path.dirname(target), { recursive: true })
          .then(() => pipeline(stream, createWriteStream(target, { flags: 'wx', mode: 0o644 })))
          .then(() => {
            files += 1;
            zip.readEntry();
          }, fail);
      });
    });
    zip.readEntry();
  });
  return files;
}
