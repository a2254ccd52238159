import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MANIFEST_TYPES } from '../../cli/publish';
import { Background, freePort } from '../../scripts/processes';

/**
 * A real Docker registry (Debian's `docker-registry`, the CNCF distribution server) on 127.0.0.1,
 * storing into a temporary directory that `stop` removes. `docker push` to 127.0.0.1 needs no TLS.
 */
export class LocalRegistry {
  static async start(): Promise<LocalRegistry> {
    const binary = process.env.DOCKER_REGISTRY_BIN ?? '/usr/bin/docker-registry';
    try {
      execFileSync(binary, ['--version'], { stdio: 'pipe' });
    } catch {
      throw new Error(`${binary} is missing: 'apt-get install -y docker-registry' (.ci/run does this)`);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-'));
    const port = await freePort();
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${path.join(dir, 'data')} }, delete: { enabled: true } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      '',
    ].join('\n'));
    const registry = new LocalRegistry(`127.0.0.1:${port}`, Background.start(binary, ['serve', config]), dir);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`http://${registry.host}/v2/`, { signal: AbortSignal.timeout(1000) })).ok) return registry;
      } catch {
        // not listening yet
      }
      if (registry.process.exitCode !== undefined) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await registry.stop();
    throw new Error(`docker-registry did not start on ${registry.host}: ${registry.process.output.slice(-2000)}`);
  }

  private constructor(readonly host: string, private readonly process: Background, private readonly dir: string) {}

  /** The digest a tag names, or undefined when the registry has no such tag. */
  async digestOf(repository: string, reference: string): Promise<string | undefined> {
    const response = await fetch(`http://${this.host}/v2/${repository}/manifests/${reference}`, {
      method: 'HEAD', headers: { accept: MANIFEST_TYPES.join(', ') }, signal: AbortSignal.timeout(5000),
    });
    return response.ok ? response.headers.get('docker-content-digest') ?? undefined : undefined;
  }

  /** A manifest and its media type, or undefined. */
  async manifest(repository: string, reference: string): Promise<{ body: string; mediaType: string; digest: string } | undefined> {
    const response = await fetch(`http://${this.host}/v2/${repository}/manifests/${reference}`, {
      headers: { accept: MANIFEST_TYPES.join(', ') }, signal: AbortSignal.timeout(5000),
    });
    if (!response.ok) return undefined;
    return { body: await response.text(), mediaType: response.headers.get('content-type')!, digest: response.headers.get('docker-content-digest')! };
  }

  /** The image configuration (labels, user, command, ...) of an image, read from the registry itself. */
  async imageConfig(repository: string, reference: string): Promise<any> {
    const manifest = await this.manifest(repository, reference);
    if (!manifest) throw new Error(`no manifest ${repository}:${reference} in the registry`);
    const config = JSON.parse(manifest.body).config?.digest;
    const response = await fetch(`http://${this.host}/v2/${repository}/blobs/${config}`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`no config blob ${config} for ${repository}:${reference}: ${response.status}`);
    return ((await response.json()) as { config: any }).config;
  }

  async putManifest(repository: string, tag: string, body: string, mediaType: string): Promise<string> {
    const response = await fetch(`http://${this.host}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT', headers: { 'content-type': mediaType }, body, signal: AbortSignal.timeout(5000),
    });
    if (!response.ok) throw new Error(`registry refused the manifest for ${repository}:${tag}: ${response.status} ${await response.text()}`);
    return response.headers.get('docker-content-digest')!;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
