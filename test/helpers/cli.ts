import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, RunResult } from '../../scripts/processes';

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'cli', 'dist', 'main.js');

/** Fails unless `npm run build` has compiled the CLI since its sources last changed (npm test builds first). */
export function requireBuiltCli(): void {
  const built = fs.existsSync(CLI) ? fs.statSync(CLI).mtimeMs : 0;
  const sources = fs.readdirSync(path.join(ROOT, 'cli')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const stale = sources.filter((f) => fs.statSync(path.join(ROOT, 'cli', f)).mtimeMs > built);
  if (stale.length > 0) throw new Error(`cli/dist/main.js is missing or older than cli/${stale[0]}: run 'npm run build' (npm test does)`);
}

/**
 * Runs the CLI as the package's `bin` entry, as a CI job would: a fresh Node process with only
 * the environment given (plus PATH), so nothing from the developer's AWS setup leaks in.
 */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<RunResult & { seconds: number }> {
  const started = Date.now();
  // This machine's Node 20 makes the AWS SDK print a multi-line notice that Node 22 is coming; the
  // workflow runs Node 22. Silenced here so that tests see exactly what the CLI writes.
  const quiet = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  return run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, ...quiet, ...env }, timeoutMs })
    .then((result) => ({ ...result, seconds: (Date.now() - started) / 1000 }));
}

/** The one line a failing command prints on stderr. */
export function errorLine(result: RunResult): string {
  const lines = result.stderr.trim().split('\n');
  return lines[lines.length - 1];
}
