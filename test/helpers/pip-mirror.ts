import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Background, freePort, run } from '../../scripts/processes';
import { normalize } from '../../scripts/python-packages';

/**
 * A PyPI mirror on 127.0.0.1 for an image build's pip (its PIP_INDEX_URL): a PEP 503 index of the
 * wheels of exact pins, each downloaded by this machine's pip (from the index it is configured
 * with) for its own CPython 3.11 on x86-64 and glibc 2.36: Debian bookworm's, which CI's bases carry.
 */
export class PipMirror {
  /** Downloads each pin's wheel (no dependencies: every one must be pinned) and serves them. */
  static async start(pins: readonly string[]): Promise<PipMirror> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pip-mirror-'));
    try {
      const files = path.join(dir, 'files');
      const download = await run('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--retries', '0',
        '--dest', files, ...pins], { timeoutMs: 600_000 });
      if (download.code !== 0) throw new Error(download.stderr.trim().split('\n').filter((l) => /ERROR/.test(l)).pop() ?? `pip exited ${download.code}`);
      const byProject = new Map<string, string[]>();
      for (const wheel of await fs.readdir(files)) {
        const project = normalize(wheel.split('-')[0]);
        byProject.set(project, [...(byProject.get(project) ?? []), wheel]);
      }
      for (const pin of pins) {
        if (!byProject.has(normalize(pin.split(/[=[]/)[0]))) throw new Error(`pip downloaded no wheel for ${pin}`);
      }
      for (const [project, wheels] of byProject) {
        await fs.mkdir(path.join(dir, 'simple', project), { recursive: true });
        await fs.writeFile(path.join(dir, 'simple', project, 'index.html'), wheels.map((w) => `<a href="../../files/${w}">${w}</a>\n`).join(''));
      }
      const port = await freePort();
      const server = Background.start('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', dir, String(port)]);
      const mirror = new PipMirror(dir, server, `http://127.0.0.1:${port}/simple/`);
      await mirror.waitUntilServing();
      return mirror;
    } catch (err) {
      await fs.rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private constructor(private readonly dir: string, private readonly server: Background, readonly url: string) {}

  async stop(): Promise<void> {
    await this.server.stop();
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  private async waitUntilServing(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (await fetch(this.url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the pip mirror did not answer at ${this.url}: ${this.server.output.slice(-500)}`);
  }
}
