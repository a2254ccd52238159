import { Duration, Token } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { InvalidPropError } from '../validation';

/** Options for a canary rollout. */
export interface CanaryRolloutOptions {
  /**
   * The share of production traffic (percent, 0.1 to 99.9 in steps of 0.1) the new tasks get
   * first, for `bakeTime`, before they get all of it.
   * @default 10
   */
  readonly percent?: number;
  /**
   * How long the canary serves its share before the rest of the traffic moves.
   * @default Duration.minutes(10)
   */
  readonly canaryBakeTime?: Duration;
  /**
   * How long the old tasks stay up after all traffic has moved, to roll back to at once.
   * @default Duration.minutes(10)
   */
  readonly bakeTime?: Duration;
}

/** Options for a linear rollout. */
export interface LinearRolloutOptions {
  /**
   * The share of production traffic (percent, 3 to 100 in steps of 0.1) that moves at each step.
   * @default 20
   */
  readonly stepPercent?: number;
  /**
   * How long each step serves before the next one.
   * @default Duration.minutes(5)
   */
  readonly interval?: Duration;
  /**
   * How long the old tasks stay up after all traffic has moved, to roll back to at once.
   * @default Duration.minutes(10)
   */
  readonly bakeTime?: Duration;
}

/** Options for a blue/green rollout. */
export interface BlueGreenRolloutOptions {
  /**
   * How long the old tasks stay up after all traffic has moved to the new ones, to roll back to at once.
   * @default Duration.minutes(10)
   */
  readonly bakeTime?: Duration;
}

/** What a rollout sets on the ECS service. */
export interface RolloutConfig {
  readonly strategy: ecs.DeploymentStrategy;
  /** @default - none (rolling) */
  readonly bakeTime?: Duration;
  /** @default - none */
  readonly canaryConfiguration?: ecs.TrafficShiftConfig;
  /** @default - none */
  readonly linearConfiguration?: ecs.TrafficShiftConfig;
}

/**
 * How a new task definition (a new model, a new image) reaches production traffic.
 *
 * - `rolling()`: tasks are replaced in place, keeping 100 % of the desired count healthy; the
 *   circuit breaker rolls back a deployment whose tasks never become healthy.
 * - `canary()`, `linear()`, `blueGreen()`: ECS starts the new tasks beside the old ones behind a
 *   second target group, checks them (golden requests, alarms) before and while production traffic
 *   moves, and rolls back on a failed check or an alarm. They run twice the tasks while they last.
 */
export abstract class Rollout {
  /** Replace tasks in place (the default). */
  public static rolling(): Rollout {
    return new FixedRollout({ strategy: ecs.DeploymentStrategy.ROLLING });
  }

  /** Send a share of the traffic to the new tasks first, then all of it. */
  public static canary(options: CanaryRolloutOptions = {}): Rollout {
    const where = 'Rollout.canary';
    const percent = options.percent ?? 10;
    checkPercent(where, 'percent', percent, 0.1, 99.9);
    checkMinutes(where, 'canaryBakeTime', options.canaryBakeTime);
    checkMinutes(where, 'bakeTime', options.bakeTime);
    return new FixedRollout({
      strategy: ecs.DeploymentStrategy.CANARY,
      bakeTime: options.bakeTime ?? DEFAULT_BAKE_TIME,
      canaryConfiguration: { stepPercent: percent, stepBakeTime: options.canaryBakeTime ?? Duration.minutes(10) },
    });
  }

  /** Move the traffic to the new tasks in equal steps. */
  public static linear(options: LinearRolloutOptions = {}): Rollout {
    const where = 'Rollout.linear';
    const stepPercent = options.stepPercent ?? 20;
    checkPercent(where, 'stepPercent', stepPercent, 3, 100);
    checkMinutes(where, 'interval', options.interval);
    checkMinutes(where, 'bakeTime', options.bakeTime);
    return new FixedRollout({
      strategy: ecs.DeploymentStrategy.LINEAR,
      bakeTime: options.bakeTime ?? DEFAULT_BAKE_TIME,
      linearConfiguration: { stepPercent, stepBakeTime: options.interval ?? Duration.minutes(5) },
    });
  }

  /** Start a full set of new tasks, test them, then move all traffic at once. */
  public static blueGreen(options: BlueGreenRolloutOptions = {}): Rollout {
    checkMinutes('Rollout.blueGreen', 'bakeTime', options.bakeTime);
    return new FixedRollout({ strategy: ecs.DeploymentStrategy.BLUE_GREEN, bakeTime: options.bakeTime ?? DEFAULT_BAKE_TIME });
  }

  /** What the rollout sets on the service. */
  public abstract readonly config: RolloutConfig;

  /** Whether the rollout runs the new tasks beside the old ones behind a second target group. */
  public get sideBySide(): boolean {
    return this.config.strategy !== ecs.DeploymentStrategy.ROLLING;
  }
}

const DEFAULT_BAKE_TIME = Duration.minutes(10);

class FixedRollout extends Rollout {
  constructor(public readonly config: RolloutConfig) {
    super();
  }
}

/** ECS takes traffic shares in steps of 0.1 percent. */
function checkPercent(where: string, prop: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) return;
  if (!(value >= min && value <= max) || Math.abs(Math.round(value * 10) - value * 10) > 1e-9) {
    throw new InvalidPropError(where, prop, `must be from ${min} to ${max} percent in steps of 0.1, got ${value}`);
  }
}

/** ECS takes bake times and intervals in whole minutes, at most a day. */
function checkMinutes(where: string, prop: string, value: Duration | undefined): void {
  if (value === undefined || value.isUnresolved()) return;
  const minutes = value.toSeconds() / 60;
  if (!Number.isInteger(minutes) || minutes < 0 || minutes > 1440) {
    throw new InvalidPropError(where, prop, `must be whole minutes from 0 to 1440, got ${value.toHumanString()}`);
  }
}
