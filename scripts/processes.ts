/**
 * The development tools' processes (tests, benchmarks, `npm run local`): one runner to completion,
 * one for background processes stopped by their own PID, and the interpreters and tools they need.
 */
import { ChildProcess, execFileSync, spawn, SpawnOptions } from 'node:child_process';
import { debianPackages, PYTHON_PACKAGES, readRequirements, REQUIREMENTS } from './python-packages';

export { freePort } from './net';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions extends SpawnOptions {
  /** SIGKILL after this long. @default 60_000 */
  readonly timeoutMs?: number;
  /** Told of every chunk of output, as it comes. */
  readonly onOutput?: (chunk: string) => void;
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its exit code and output. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
      options.onOutput?.(String(d));
    });
    child.stderr!.on('data', (d) => {
      stderr += d;
      options.onOutput?.(String(d));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running process whose output is kept, stopped by its own PID. */
export class Background {
  static start(command: string, args: string[], options: SpawnOptions = {}): Background {
    return new Background(spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  public output = '';
  public exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d) => (this.output += d));
    child.stderr?.on('data', (d) => (this.output += d));
    this.exited = new Promise((resolve) => child.on('exit', (code) => {
      this.exitCode = code;
      resolve();
    }));
  }

  /** Waits for exit, at most `timeoutMs`; returns the exit code, or undefined if still running. */
  async waitForExit(timeoutMs: number): Promise<number | null | undefined> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer); // a pending timer would keep jest alive after the suites finish
    return this.exitCode;
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    if ((await this.waitForExit(graceMs)) === undefined) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Debian's Python with the server's packages (what requirements.txt pins, through their Debian stand-ins). */
export const SYSTEM_PYTHON = process.env.MODEL_SERVER_PYTHON ?? '/usr/bin/python3';

/** Fails, with the install command, unless SYSTEM_PYTHON can import everything requirements.txt pins. */
export function requireServerPython(): void {
  const pins = readRequirements(REQUIREMENTS.cpu).map((p) => PYTHON_PACKAGES[p.name]).filter((p) => p.debian !== null);
  const modules = pins.flatMap((p) => p.imports);
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', `import ${modules.join(', ')}`], { stdio: 'pipe' });
  } catch {
    throw new Error(
      `${SYSTEM_PYTHON} cannot import the server's packages (${modules.join(', ')}). Install them with ` +
        `'apt-get install -y ${debianPackages(REQUIREMENTS.cpu).join(' ')}' (.ci/run does this), ` +
        'or point MODEL_SERVER_PYTHON at an interpreter that has them.',
    );
  }
}

/** Debian's wrk (an HTTP load generator); fails with the install command when it is missing. */
export function requireWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'pipe' });
  } catch (err: any) {
    // wrk --version exits 1 after printing its version; only a missing binary is a problem.
    if (err.code === 'ENOENT') throw new Error("wrk is not installed: 'apt-get install -y wrk' (.ci/run does this)", { cause: err });
  }
}
