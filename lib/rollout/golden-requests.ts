import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { checkDuration, InvalidPropError } from '../validation';
import { parseGoldenFile } from './golden-file';

/** Options for golden requests. */
export interface GoldenRequestsOptions {
  /**
   * The slowest answer that passes, for every request whose line sets no `maxLatencyMs` of its own.
   * @default Duration.seconds(1)
   */
  readonly maxLatency?: Duration;
}

/**
 * Requests with known answers that new tasks must answer correctly, in time, before they get
 * production traffic. A file of JSON lines, each with the `request` body for `/predict`, the
 * fields the answer must `expect`, and optionally a `tolerance` for numbers, a `maxLatencyMs`
 * and a `name` (failures name the request by it):
 *
 * ```
 * {"name": "setosa", "request": {"features": [5.1, 3.5, 1.4, 0.2]}, "expect": {"prediction": 0}}
 * {"name": "price", "request": {"features": [3, 2, 120]}, "expect": {"prediction": 412000}, "tolerance": 500}
 * ```
 *
 * The file is read and checked at synth; a malformed line fails synth, naming the line.
 */
export class GoldenRequests {
  /** Golden requests from a JSON-lines file. */
  public static fromFile(filePath: string, options: GoldenRequestsOptions = {}): GoldenRequests {
    const where = 'GoldenRequests.fromFile';
    const resolved = path.resolve(filePath);
    if (!fs.existsSync(resolved) || !fs.statSync(resolved).isFile()) {
      throw new InvalidPropError(where, 'filePath', `${resolved} is not a file; give a JSON-lines file of golden requests`);
    }
    let count: number;
    try {
      count = parseGoldenFile(fs.readFileSync(resolved, 'utf8')).length;
    } catch (err) {
      throw new InvalidPropError(where, 'filePath', `${resolved}: ${(err as Error).message}`);
    }
    checkDuration(where, 'maxLatency', options.maxLatency, Duration.millis(1), Duration.minutes(1));
    return new GoldenRequests(resolved, count, options.maxLatency ?? Duration.seconds(1));
  }

  private constructor(
    /** The file's absolute path. */
    public readonly filePath: string,
    /** How many requests it holds. */
    public readonly count: number,
    /** The default bound on one answer's latency. */
    public readonly maxLatency: Duration,
  ) {}
}
