/** The servers a benchmark measures: started in the background, output to a file, stopped by their own PID. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { waitForHttp } from '../scripts/wait-for-http';

export interface Server {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function start(
  name: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, port: number, logFile: string,
): Promise<Server> {
  // Output goes to a file, not a pipe: wrk runs synchronously, and a server blocked on a full
  // pipe (Flask's development server and this server log every request) would measure the pipe, not the server.
  const out = fs.openSync(logFile, 'w');
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health`, { alive: () => child.exitCode === null, describe: () => fs.readFileSync(logFile, 'utf8').slice(-4000) });
  return {
    name,
    url,
    pid: child.pid!,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }),
  };
}

/** Runs `body` against a server started by `launch`, always stopping it. */
export async function withServer<T>(launch: () => Promise<Server>, body: (s: Server) => Promise<T> | T): Promise<T> {
  const server = await launch();
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

