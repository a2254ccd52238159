import { Duration, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Where a prop was given: a construct, named by its path (`ModelServing/Model`), or, for a static
 * factory that runs before any construct exists, the factory's name (`ModelSource.fromS3Uri`).
 */
export type PropOwner = IConstruct | string;

/**
 * Thrown at synth for a prop that cannot work. Like aws-cdk-lib's ValidationError, the message
 * starts with the construct's path, then names the prop and says what is allowed, so the fix is
 * obvious from the error alone: `ModelServing/Model: invalid 'minCapacity': must be ...`.
 */
export class InvalidPropError extends Error {
  /** The construct path, or the factory's name, the message starts with. */
  public readonly where: string;

  constructor(owner: PropOwner, prop: string, message: string) {
    const where = typeof owner === 'string' ? owner : owner.node.path;
    super(`${where}: invalid '${prop}': ${message}`);
    this.name = 'InvalidPropError';
    this.where = where;
  }
}

/** Checks an integer prop against an inclusive range; unresolved tokens are left to deploy time. */
export function checkIntRange(owner: PropOwner, prop: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidPropError(owner, prop, `must be an integer from ${min} to ${max}, got ${value}`);
  }
}

/** Checks a Duration prop against an inclusive range. */
export function checkDuration(owner: PropOwner, prop: string, value: Duration | undefined, min: Duration, max: Duration): void {
  if (value === undefined || value.isUnresolved()) return;
  const ms = value.toMilliseconds();
  if (ms < min.toMilliseconds() || ms > max.toMilliseconds()) {
    throw new InvalidPropError(
      owner, prop, `must be from ${min.toHumanString()} to ${max.toHumanString()}, got ${value.toHumanString()}`,
    );
  }
}

/** The props whose value is not undefined, so they can override defaults with a spread. */
export function definedOnly<T extends object>(props: T): Partial<T> {
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as Partial<T>;
}
