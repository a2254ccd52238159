import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { SYSTEM_PYTHON } from '../../scripts/processes';
import { readRequirements, REQUIREMENTS } from '../../scripts/python-packages';

/**
 * Debian's Python with one change: the HTTP parser (httptools) at the version requirements.txt
 * pins, installed by pip into a virtual environment over Debian's packages. Debian's own httptools
 * is older, and its llhttp refuses oversized headers by itself; the pinned one does not, so the
 * server's own header limits are tested on both. Throws one line when pip cannot install the pin
 * (a machine without a package index).
 */
export function pythonWithPinnedHttptools(dir: string): string {
  const pin = readRequirements(REQUIREMENTS.cpu).find((p) => p.name === 'httptools');
  if (!pin) throw new Error('requirements.txt pins no httptools');
  const venv = path.join(dir, 'pinned-httptools');
  execFileSync(SYSTEM_PYTHON, ['-m', 'venv', '--system-site-packages', venv], { stdio: 'pipe' });
  const python = path.join(venv, 'bin', 'python3');
  try {
    execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--retries', '0', '--only-binary=:all:', `httptools==${pin.version}`],
      { stdio: 'pipe', timeout: 300_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim().split('\n').pop();
    throw new Error(`pip cannot install httptools==${pin.version} on this machine, so the pinned parser cannot be tested: ${stderr}`, { cause: err });
  }
  const version = execFileSync(python, ['-c', 'import httptools; print(httptools.__version__)'], { encoding: 'utf8' }).trim();
  if (version !== pin.version) throw new Error(`the virtual environment imports httptools ${version}, not the pinned ${pin.version}`);
  return python;
}
