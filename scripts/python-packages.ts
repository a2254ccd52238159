/**
 * The model server's Python packages as CI gets them: the pinned requirement files are the truth,
 * and this one table maps each PyPI distribution to the Debian package that stands in for it where
 * PyPI cannot be reached (CI's base images, the host-side server tests). A pin with no row here
 * fails loudly, and a package missing from a requirement file is missing from everything derived
 * from it, so the tests that need it fail too.
 *
 *   npx ts-node --transpile-only scripts/python-packages.ts debian assets/model-server/requirements.txt [...]
 *
 * prints the Debian packages for the given requirement files, one per line (.ci/run uses it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../lib/asset-paths';
import { normalize } from '../lib/image/server-requirements';

export { normalize };

export interface PythonPackage {
  /**
   * The Debian package that provides it, or null where bookworm has none because its older
   * stand-ins do not need it (then `noStandIn` says why).
   */
  readonly debian: string | null;
  readonly noStandIn?: string;
  /** The top-level modules it provides (what `import` names). */
  readonly imports: readonly string[];
  /** The distributions it needs at run time on every Python (its own Requires-Dist, without extras). */
  readonly requires: readonly string[];
}

/** PyPI distribution (normalized: lower case, '-' for '_' and '.') → what stands in for it. */
export const PYTHON_PACKAGES: Readonly<Record<string, PythonPackage>> = {
  'scikit-learn': { debian: 'python3-sklearn', imports: ['sklearn'], requires: ['numpy', 'scipy', 'joblib', 'threadpoolctl', 'narwhals'] },
  'narwhals': { debian: null, noStandIn: 'Debian\'s scikit-learn 1.2 predates its use of narwhals', imports: ['narwhals'], requires: [] },
  'scipy': { debian: 'python3-scipy', imports: ['scipy'], requires: ['numpy'] },
  'numpy': { debian: 'python3-numpy', imports: ['numpy'], requires: [] },
  'joblib': { debian: 'python3-joblib', imports: ['joblib'], requires: ['cloudpickle'] },
  'cloudpickle': { debian: 'python3-cloudpickle', imports: ['cloudpickle'], requires: [] },
  'threadpoolctl': { debian: 'python3-threadpoolctl', imports: ['threadpoolctl'], requires: [] },
  // (and tzdata on Windows and Emscripten only)
  'pandas': { debian: 'python3-pandas', imports: ['pandas'], requires: ['numpy', 'python-dateutil'] },
  'python-dateutil': { debian: 'python3-dateutil', imports: ['dateutil'], requires: ['six'] },
  'six': { debian: 'python3-six', imports: ['six'], requires: [] },
  // (and typing-extensions below Python 3.11, which the GPU image pins for torch anyway)
  'uvicorn': { debian: 'python3-uvicorn', imports: ['uvicorn'], requires: ['click', 'h11'] },
  'h11': { debian: 'python3-h11', imports: ['h11'], requires: [] },
  'click': { debian: 'python3-click', imports: ['click'], requires: [] },
  'httptools': { debian: 'python3-httptools', imports: ['httptools'], requires: [] },
  'uvloop': { debian: 'python3-uvloop', imports: ['uvloop'], requires: [] },
  'gunicorn': { debian: 'python3-gunicorn', imports: ['gunicorn'], requires: ['packaging'] },
  'packaging': { debian: 'python3-packaging', imports: ['packaging'], requires: [] },
  'prometheus-client': { debian: 'python3-prometheus-client', imports: ['prometheus_client'], requires: [] },
  'torch': {
    debian: 'python3-torch',
    imports: ['torch'],
    // (setuptools from Python 3.12 on, which the GPU image runs)
    requires: ['filelock', 'typing-extensions', 'sympy', 'networkx', 'jinja2', 'fsspec', 'setuptools'],
  },
  'setuptools': { debian: 'python3-setuptools', imports: ['setuptools', 'pkg_resources'], requires: [] },
  'filelock': { debian: 'python3-filelock', imports: ['filelock'], requires: [] },
  'typing-extensions': { debian: 'python3-typing-extensions', imports: ['typing_extensions'], requires: [] },
  'sympy': { debian: 'python3-sympy', imports: ['sympy'], requires: ['mpmath'] },
  'mpmath': { debian: 'python3-mpmath', imports: ['mpmath'], requires: [] },
  'networkx': { debian: 'python3-networkx', imports: ['networkx'], requires: [] },
  'fsspec': { debian: 'python3-fsspec', imports: ['fsspec'], requires: [] },
  'jinja2': { debian: 'python3-jinja2', imports: ['jinja2'], requires: ['markupsafe'] },
  'markupsafe': { debian: 'python3-markupsafe', imports: ['markupsafe'], requires: [] },
};

/** The requirement file each server image installs. */
export const REQUIREMENTS = {
  cpu: path.join(MODEL_SERVER_DIR, 'requirements.txt'),
  gpu: path.join(MODEL_SERVER_DIR, 'requirements-gpu.txt'),
} as const;

export interface Pin {
  readonly name: string;
  readonly version: string;
}


/** The `name==version` pins of a requirement file; anything else in it is an error. */
export function readRequirements(file: string): Pin[] {
  return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean).map((line) => {
    const match = /^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$/.exec(line);
    if (!match) throw new Error(`${path.basename(file)}: '${line}' is not an exact pin (name==version)`);
    return { name: normalize(match[1]), version: match[2] };
  });
}

/** The Debian packages that stand in for a requirement file's pins (none for a pin without a stand-in). */
export function debianPackages(file: string): string[] {
  return readRequirements(file).flatMap(({ name }) => {
    const row = PYTHON_PACKAGES[name];
    if (!row) throw new Error(`${path.basename(file)} pins ${name}, which scripts/python-packages.ts does not map to a Debian package: add a row`);
    return row.debian ? [row.debian] : [];
  });
}

if (require.main === module) {
  const [command, ...files] = process.argv.slice(2);
  if (command !== 'debian' || files.length === 0) {
    process.stderr.write('usage: python-packages.ts debian <requirements file>...\n');
    process.exit(2);
  }
  try {
    process.stdout.write(`${[...new Set(files.flatMap(debianPackages))].join('\n')}\n`);
  } catch (err) {
    process.stderr.write(`python-packages: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
