import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { docker, dockerOk } from '../../scripts/docker';
import { debianPackages, REQUIREMENTS } from '../../scripts/python-packages';

/**
 * Base images for CI, which can pull nothing from Docker Hub: minimal Debian bookworm root file
 * systems made by mmdebstrap from Debian's packages and imported into Docker. Each is tagged by a
 * hash of what it contains, so it is built once per machine and rebuilt only when that changes.
 */
const SOURCES = [
  'deb http://deb.debian.org/debian bookworm main',
  'deb http://deb.debian.org/debian bookworm-updates main',
  'deb http://deb.debian.org/debian-security bookworm-security main',
];

/** Removed from the bases: the runtime images must carry no compiler. */
const COMPILERS = ['g++', 'g++-12', 'gcc', 'gcc-12', 'cpp', 'cpp-12', 'make'];

/**
 * What each base image carries. The servers' Python packages are derived from their pinned
 * requirement files (scripts/python-packages.ts maps each pin to its Debian package), never listed
 * here: a package missing from a requirement file is missing from the image built on its base.
 */
const BASE_IMAGES = {
  /** Stands in for python:3.13-slim: Debian's Python 3.11 with venv, nothing else; the server image's pip step installs the pins. */
  'python-venv': () => ['passwd', 'python3', 'python3-venv'],
  /** Stands in for python:3.13-slim plus `pip install -r requirements.txt`, where pip cannot fetch the pins: Debian's stand-ins. */
  'python': () => ['passwd', 'python3', 'python3-venv', ...debianPackages(REQUIREMENTS.cpu)],
  /**
   * Stands in for the nvidia/cuda base plus `pip install -r requirements-gpu.txt`: Debian's
   * python3-torch is PyTorch built for the CPU only, so this image has no CUDA.
   * (python3-venv: what Dockerfile.gpu installs on a base that lacks it.)
   */
  'python-gpu': () => ['passwd', 'python3', 'python3-venv', ...debianPackages(REQUIREMENTS.gpu)],
  /** Stands in for node:22-bookworm-slim. */
  node: () => ['passwd', 'nodejs'],
} as const;

export async function ensureBaseImage(name: keyof typeof BASE_IMAGES, log: (line: string) => void = () => undefined): Promise<string> {
  const packages = BASE_IMAGES[name]();
  const recipe = JSON.stringify({ variant: 'minbase', recommends: false, purge: COMPILERS, suite: 'bookworm', sources: SOURCES, packages });
  const tag = `cdk-model-serving-ci/${name}-base:${createHash('sha256').update(recipe).digest('hex').slice(0, 12)}`;
  if ((await docker(['image', 'inspect', tag], { timeoutMs: 30_000 })).code === 0) return tag;

  try {
    execFileSync('mmdebstrap', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error("mmdebstrap is not installed: 'apt-get install -y mmdebstrap' (.ci/run does this)");
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `base-${name}-`));
  try {
    const tar = path.join(dir, 'rootfs.tar');
    log(`building base image ${tag} from Debian packages: ${packages.join(' ')}`);
    // No Recommends and no compilers, like the slim official images these stand in for. (Debian's
    // scipy depends on pythran, an ahead-of-time compiler, and so on gcc; nothing runs it at run time.)
    execFileSync('mmdebstrap', ['--variant=minbase', '--aptopt=APT::Install-Recommends "false"', `--include=${packages.join(',')}`,
      `--customize-hook=chroot "$1" sh -c 'dpkg --purge --force-depends ${COMPILERS.join(' ')} 2>/dev/null || true'`,
      '--quiet', 'bookworm', tar, ...SOURCES],
      { stdio: 'pipe', timeout: 900_000 });
    await dockerOk(['import', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', tar, tag], { timeoutMs: 600_000 });
    return tag;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
