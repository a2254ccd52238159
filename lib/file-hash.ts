import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

/** SHA-256 (hex) of a file's bytes, read in chunks so a multi-GiB model never sits in memory. */
export function sha256File(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(4 * 1024 * 1024);
  const fd = fs.openSync(file, 'r');
  try {
    let read: number;
    while ((read = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0) {
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
