import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Resident memory (KiB) of a process and its children (the server's workers), from /proc. */
export function treeRssKiB(pid: number): number {
  const children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  return [pid, ...children].reduce((sum, p) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))![1]), 0);
}
