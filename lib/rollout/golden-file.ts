/**
 * Golden requests: a file of requests and the answers a model must give them, checked against a
 * server before it takes production traffic. (No CDK here: the constructs parse the file at synth,
 * and the golden-request hook's Lambda bundle, assets/functions, checks the answers with it.)
 * One JSON object a line:
 *
 *   {"name": "setosa", "request": {"features": [5.1, 3.5, 1.4, 0.2]}, "expect": {"prediction": "setosa"}}
 *   {"name": "petal width", "request": {"features": [5.1, 3.5, 1.4]}, "expect": {"prediction": 0.21}, "tolerance": 0.05}
 *
 * `expect` holds the fields the answer must have (others, such as probabilities, may be there
 * too); numbers must be within `tolerance` (default 0: exact). `maxLatencyMs` bounds one request.
 */
export interface GoldenCase {
  readonly name: string;
  readonly request: unknown;
  readonly expect: Record<string, unknown>;
  readonly tolerance: number;
  readonly maxLatencyMs?: number;
}

/** What a server answered one request with. */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly ms: number;
}

/** Sends one /predict body and returns the answer (or throws when none came). */
export type Send = (body: string) => Promise<Answer>;

export interface Failure {
  readonly name: string;
  readonly reason: string;
}

/** Parses a golden file; a malformed line is an error that names it. */
export function parseGoldenFile(text: string): GoldenCase[] {
  const cases: GoldenCase[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `golden requests line ${index + 1}`;
    let entry: any;
    try {
      entry = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: not JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new Error(`${where}: must be a JSON object`);
    if (typeof entry.request !== 'object' || entry.request === null) throw new Error(`${where}: needs "request", the body to POST to /predict`);
    if (typeof entry.expect !== 'object' || entry.expect === null || Array.isArray(entry.expect) || Object.keys(entry.expect).length === 0) {
      throw new Error(`${where}: needs "expect", an object of the fields the answer must have`);
    }
    for (const [key, bound] of [['tolerance', entry.tolerance], ['maxLatencyMs', entry.maxLatencyMs]] as const) {
      if (bound !== undefined && !(typeof bound === 'number' && bound >= 0)) throw new Error(`${where}: "${key}" must be a number of at least 0`);
    }
    if (entry.name !== undefined && typeof entry.name !== 'string') throw new Error(`${where}: "name" must be a string`);
    cases.push({ name: entry.name ?? `line ${index + 1}`, request: entry.request, expect: entry.expect, tolerance: entry.tolerance ?? 0, maxLatencyMs: entry.maxLatencyMs });
  });
  if (cases.length === 0) throw new Error('the golden requests file has no requests');
  const names = cases.map((c) => c.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`the golden requests file names "${duplicate}" twice: each request needs a name of its own`);
  return cases;
}

/** Sends every golden request and returns what went wrong with each that failed (empty: all passed). */
export async function checkGolden(cases: readonly GoldenCase[], send: Send, defaultMaxLatencyMs: number): Promise<Failure[]> {
  const failures: Failure[] = [];
  for (const c of cases) {
    let answer: Answer;
    try {
      answer = await send(JSON.stringify(c.request));
    } catch (err) {
      failures.push({ name: c.name, reason: `no answer: ${(err as Error).message}` });
      continue;
    }
    const limit = c.maxLatencyMs ?? defaultMaxLatencyMs;
    if (answer.status !== 200) {
      const error = (answer.body as any)?.error;
      failures.push({ name: c.name, reason: `answered ${answer.status}${error ? `: ${String(error).slice(0, 200)}` : ''}` });
    } else if (answer.ms > limit) {
      failures.push({ name: c.name, reason: `answered in ${Math.round(answer.ms)} ms, over the ${limit} ms bound` });
    } else {
      const mismatch = difference(c.expect, answer.body, c.tolerance, '');
      if (mismatch) failures.push({ name: c.name, reason: mismatch });
    }
  }
  return failures;
}

/** The first way `actual` differs from `expected` (fields of `expected` only), or undefined. */
function difference(expected: unknown, actual: unknown, tolerance: number, path: string): string | undefined {
  const at = path || 'the answer';
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return `${at} is ${show(actual)}, expected ${expected}`;
    return Math.abs(actual - expected) <= tolerance ? undefined
      : `${at} is ${actual}, expected ${expected}${tolerance ? ` ± ${tolerance}` : ''}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at} is ${show(actual)}, expected a list of ${expected.length}`;
    if (actual.length !== expected.length) return `${at} has ${actual.length} entries, expected ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      const d = difference(expected[i], actual[i], tolerance, `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return `${at} is ${show(actual)}, expected an object`;
    for (const [key, value] of Object.entries(expected)) {
      const child = path ? `${path}.${key}` : key;
      if (!(key in actual)) return `${child} is missing`;
      const d = difference(value, (actual as Record<string, unknown>)[key], tolerance, child);
      if (d) return d;
    }
    return undefined;
  }
  return actual === expected ? undefined : `${at} is ${show(actual)}, expected ${show(expected)}`;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
