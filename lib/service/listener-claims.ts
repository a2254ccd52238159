import { Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { InvalidPropError } from '../validation';
import { ExistingListenerOptions } from './model-endpoint';

/** The rules one service put on a shared listener. */
interface Claim {
  readonly owner: string;
  readonly priorities: readonly number[];
  /** The requests its production rule matches: its path prefix and other conditions. */
  readonly route: string;
}

/** The claims on each shared listener, by its ARN, per app. */
const CLAIMS = new WeakMap<IConstruct, Map<string, Claim[]>>();

/**
 * Records the rules a service puts on a shared listener, and refuses those another service of the
 * same app already put there: the same priority (which CloudFormation would refuse at deploy, after
 * the first stack) or the same path prefix and conditions (whose requests the second rule would
 * never see). Returns the test rule's priority for a side-by-side rollout: the one given, else the
 * priority just before the production rule's when no service of this app has it. Rules made
 * outside this app are not known here: CloudFormation still refuses a taken priority at deploy.
 */
export function claimListenerRules(scope: IConstruct, options: ExistingListenerOptions, sideBySide: boolean): number | undefined {
  if (Token.isUnresolved(options.priority) || Token.isUnresolved(options.testPriority)) {
    if (sideBySide && options.testPriority === undefined) throw missingTestPriority(scope, options.priority);
    return options.testPriority;
  }
  const byListener = CLAIMS.get(scope.node.root) ?? new Map<string, Claim[]>();
  CLAIMS.set(scope.node.root, byListener);
  const claims = byListener.get(options.listener.listenerArn) ?? [];
  byListener.set(options.listener.listenerArn, claims);
  const takenBy = (priority: number) => claims.find((c) => c.priorities.includes(priority));

  let testPriority = options.testPriority;
  if (sideBySide && testPriority === undefined) {
    testPriority = options.priority - 1;
    if (testPriority < 1 || takenBy(testPriority)) throw missingTestPriority(scope, options.priority);
  }
  const priorities = [options.priority, ...(testPriority !== undefined ? [testPriority] : [])];
  for (const [prop, priority] of [['existingListener.priority', options.priority], ['existingListener.testPriority', testPriority]] as const) {
    const other = priority !== undefined && takenBy(priority);
    if (other) {
      throw new InvalidPropError(scope, prop, `(${priority}) is taken on this listener by ${other.owner}: give each service priorities of its own`);
    }
  }
  const route = JSON.stringify([options.pathPrefix ?? '', ...(options.conditions ?? []).map((c) => c.renderRawCondition())]);
  const same = claims.find((c) => c.route === route);
  if (same) {
    throw new InvalidPropError(scope, 'existingListener.pathPrefix',
      `${options.pathPrefix ? `('${options.pathPrefix}') and the conditions` : 'the conditions'} are those of ${same.owner} on this listener, ` +
      'whose rule would take every request: give each service a path prefix (or host) of its own');
  }
  claims.push({ owner: scope.node.path, priorities, route });
  return testPriority;
}

function missingTestPriority(scope: IConstruct, priority: number): InvalidPropError {
  return new InvalidPropError(scope, 'existingListener.testPriority',
    `is needed by the side-by-side rollout, for the rule that sends test requests to the new tasks: give a priority below ${priority} that is free on the listener`);
}
