import { Duration, Token } from 'aws-cdk-lib';

/**
 * Thrown at synth for a prop that cannot work. The message names the construct, the prop and
 * what is allowed, so the fix is obvious from the error alone.
 */
export class InvalidPropError extends Error {
  constructor(where: string, prop: string, message: string) {
    super(`${where}: invalid '${prop}': ${message}`);
    this.name = 'InvalidPropError';
  }
}

/** Checks an integer prop against an inclusive range; unresolved tokens are left to deploy time. */
export function checkIntRange(where: string, prop: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidPropError(where, prop, `must be an integer from ${min} to ${max}, got ${value}`);
  }
}

/** Checks a Duration prop against an inclusive range in seconds. */
export function checkDuration(where: string, prop: string, value: Duration | undefined, min: Duration, max: Duration): void {
  if (value === undefined || value.isUnresolved()) return;
  const ms = value.toMilliseconds();
  if (ms < min.toMilliseconds() || ms > max.toMilliseconds()) {
    throw new InvalidPropError(
      where, prop, `must be from ${min.toHumanString()} to ${max.toHumanString()}, got ${value.toHumanString()}`,
    );
  }
}
