import { UsageError } from './errors';

/** A `--flag SECONDS` value: a positive number, or a usage error that names the flag. */
export function positiveSeconds(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number of seconds, got '${value}'`);
  return n;
}
