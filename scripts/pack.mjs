// npm run pack [DEST]: the package as it is published. npm packs a staging copy of exactly the
// files package.json's `files` names, with a manifest that carries nothing only this repository
// needs: no `prepare` script (it builds a checkout) and no `workspaces` (the fetcher's and the
// functions' sources, which the package ships as bundles). Prints the tarball's path. The
// checkout itself is never changed, so a pack running beside the tests cannot disturb them.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dest = resolve(process.argv[2] ?? root);
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });

const [listing] = JSON.parse(npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root));
const staging = mkdtempSync(join(tmpdir(), 'pack-'));
try {
  for (const { path } of listing.files) {
    mkdirSync(dirname(join(staging, path)), { recursive: true });
    cpSync(join(root, path), join(staging, path));
  }
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  delete manifest.workspaces;
  delete manifest.scripts.prepare;
  writeFileSync(join(staging, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const [packed] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dest], staging));
  console.log(join(dest, packed.filename));
} finally {
  rmSync(staging, { recursive: true, force: true });
}
