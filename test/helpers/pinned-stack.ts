import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SAMPLE_MODEL_DIR, SAMPLE_MODEL_FILE } from '../../lib/asset-paths';
import { normalize, readRequirements, REQUIREMENTS } from '../../scripts/python-packages';

/**
 * The server's pinned stack: a virtual environment on Debian bookworm's Python 3.11 into which pip
 * installs exactly what requirements.txt pins, from the package index this machine's pip is
 * configured with. The `integ-pinned` jest project runs the server suites on it, beside the
 * `integ` project on Debian's stand-ins (jest.config.js); `onPinnedStack()` tells a suite which one
 * it is in.
 */
export function onPinnedStack(): boolean {
  // Read when asked: the project's setup file sets it after this module is first loaded.
  return process.env.MODEL_SERVER_STACK === 'pinned';
}

/** Debian's Python, with Debian's packages: the stand-ins' stack, and the pinned stack's interpreter. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/**
 * The pinned stack's interpreter, built once per machine and requirement file (a cached virtual
 * environment). Throws one line when pip cannot install the pins, or when what pip installs is
 * not exactly what the file pins (a dependency the file does not hold, or another version).
 */
export function ensurePinnedPython(): string {
  const requirements = fs.readFileSync(REQUIREMENTS.cpu);
  const hash = createHash('sha256').update(requirements).digest('hex').slice(0, 12);
  const venv = path.join(os.tmpdir(), `cdk-model-serving-pinned-${hash}`);
  const python = path.join(venv, 'bin', 'python3');
  if (fs.existsSync(path.join(venv, '.complete'))) return python;

  // Built aside and renamed into place, so that two suites starting at once never see half of one.
  const building = `${venv}.${process.pid}`;
  fs.rmSync(building, { recursive: true, force: true });
  execFileSync(DEBIAN_PYTHON, ['-m', 'venv', building], { stdio: 'pipe' });
  try {
    execFileSync(path.join(building, 'bin', 'python3'), ['-m', 'pip', 'install', '--quiet', '--retries', '0', '--only-binary=:all:',
      '-r', REQUIREMENTS.cpu], { stdio: 'pipe', timeout: 900_000 });
  } catch (err) {
    fs.rmSync(building, { recursive: true, force: true });
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim().split('\n').filter((l) => /ERROR/.test(l)).pop();
    throw new Error(`pip cannot install requirements.txt's pins on this machine, so the pinned stack cannot be tested: ${stderr}`, { cause: err });
  }
  const installed = execFileSync(path.join(building, 'bin', 'python3'), ['-m', 'pip', 'list', '--format', 'json', '--exclude', 'pip', '--exclude', 'setuptools'],
    { encoding: 'utf8' });
  const got = (JSON.parse(installed) as Array<{ name: string; version: string }>).map((p) => `${normalize(p.name)}==${p.version}`).sort();
  const pinned = readRequirements(REQUIREMENTS.cpu).map((p) => `${p.name}==${p.version}`).sort();
  const extra = got.filter((p) => !pinned.includes(p));
  const missing = pinned.filter((p) => !got.includes(p));
  if (extra.length || missing.length) {
    fs.rmSync(building, { recursive: true, force: true });
    throw new Error(`pip installed other packages than requirements.txt pins: ${[...extra.map((p) => `+${p}`), ...missing.map((p) => `-${p}`)].join(' ')}; ` +
      'pin every dependency, at the version pip resolves');
  }
  fs.writeFileSync(path.join(building, '.complete'), '');
  try {
    fs.renameSync(building, venv);
  } catch {
    fs.rmSync(building, { recursive: true, force: true }); // another suite got there first
  }
  return python;
}

/**
 * A test that needs a package outside the server's pins (PyTorch, XGBoost), which only Debian's
 * stack carries: on the pinned stack it is reported as skipped, with the reason in its name.
 */
export function debianStackOnlyTest(name: string, why: string, fn: () => Promise<void>, timeout?: number): void {
  if (onPinnedStack()) test.skip(`${name} [Debian's stack only: ${why}]`, fn);
  else test(name, fn, timeout);
}

/**
 * A directory holding the sample model (iris.joblib alone) for a server on `python`: the shipped
 * file, pickled by the pinned scikit-learn, on the pinned stack; on Debian's stand-ins, whose
 * numpy 1.x cannot read numpy 2's pickles, a copy that the sample's own train.py retrains there.
 */
export function sampleModelDir(python: string): string {
  if (python !== DEBIAN_PYTHON) return shippedSampleOnly();
  const trainer = path.join(SAMPLE_MODEL_DIR, 'train.py');
  const hash = createHash('sha256').update(fs.readFileSync(trainer)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `cdk-model-serving-sample-debian-${hash}`);
  if (fs.existsSync(path.join(dir, 'iris.joblib'))) return dir;
  const building = `${dir}.${process.pid}`;
  fs.mkdirSync(building, { recursive: true });
  execFileSync(DEBIAN_PYTHON, [trainer, path.join(building, 'iris.joblib')], { stdio: 'pipe' });
  try {
    fs.renameSync(building, dir);
  } catch {
    fs.rmSync(building, { recursive: true, force: true });
  }
  return dir;
}

/** The shipped sample model in a directory of its own (the sample's folder also holds train.py and the golden file). */
function shippedSampleOnly(): string {
  const hash = createHash('sha256').update(fs.readFileSync(SAMPLE_MODEL_FILE)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `cdk-model-serving-sample-${hash}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(SAMPLE_MODEL_FILE, path.join(dir, path.basename(SAMPLE_MODEL_FILE)));
  return dir;
}

/** The sample model's file for a server on `python` (see sampleModelDir). */
export function sampleModelFile(python: string): string {
  return path.join(sampleModelDir(python), path.basename(SAMPLE_MODEL_FILE));
}
