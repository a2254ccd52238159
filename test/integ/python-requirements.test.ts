import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { normalize, PYTHON_PACKAGES, readRequirements, REQUIREMENTS } from '../../scripts/python-packages';

/**
 * The requirement files are the truth of what each server image has: every third-party module
 * the server imports must be pinned in the file of every image that runs it, with what it needs
 * in turn, and every pin must be imported or needed by a pin that is. The imports are read by
 * Python's own parser.
 */

/** What a requirement file may leave out, and why. */
const NOT_IN_IMAGE: Record<keyof typeof REQUIREMENTS, Record<string, string>> = {
  cpu: { torch: 'TorchScript models are served by the GPU image; the CPU image refuses them at start, naming it (container suite)' },
  gpu: {},
};

/** Third-party top-level modules imported by each file of the model_server package. */
function serverImports(): Record<string, string[]> {
  const script = `
import ast, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
found = {}
for f in sorted(root.rglob("*.py")):
    names = set()
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    found[str(f.relative_to(root.parent))] = sorted(n for n in names if n not in sys.stdlib_module_names and n != root.name)
print(json.dumps(found))
`;
  // Any Python 3.10+ has the standard library's module list; no package of the server is needed.
  return JSON.parse(execFileSync('python3', ['-c', script, path.join(MODEL_SERVER_DIR, 'model_server')], { encoding: 'utf8' }));
}

const distributionOf = new Map(Object.entries(PYTHON_PACKAGES).flatMap(([dist, p]) => p.imports.map((m) => [m, dist] as const)));

/** What is wrong with `pins` for an image whose server imports `imports` (empty: nothing). */
function problems(imports: Record<string, string[]>, pins: string[], notInImage: Record<string, string>): string[] {
  const found: string[] = [];
  const needed = new Set<string>();
  for (const [file, modules] of Object.entries(imports)) {
    for (const module of modules) {
      const dist = distributionOf.get(module);
      if (!dist) {
        found.push(`${file} imports ${module}, which no row of scripts/python-packages.ts provides`);
        continue;
      }
      if (dist in notInImage) continue;
      needed.add(dist);
      if (!pins.includes(dist)) found.push(`${file} imports ${module}, but ${dist} is not pinned`);
    }
  }
  const closure = new Set<string>();
  const visit = (dist: string) => {
    if (closure.has(dist)) return;
    closure.add(dist);
    for (const required of PYTHON_PACKAGES[dist]?.requires ?? []) {
      // Transitive dependencies are pinned too, or an image build is not reproducible.
      if (!pins.includes(required)) found.push(`${required} is required by ${dist}, but not pinned`);
      visit(required);
    }
  };
  [...needed, ...pins.filter((p) => p in notInImage)].forEach(visit);
  for (const pin of pins) {
    if (!PYTHON_PACKAGES[pin]) found.push(`${pin} is pinned but has no row in scripts/python-packages.ts`);
    else if (!closure.has(pin)) found.push(`${pin} is pinned, but nothing imports it and no needed pin requires it`);
  }
  return found;
}

const imports = serverImports();

test('the server imports third-party modules, and the parser sees them (uvicorn, numpy, prometheus_client, ...)', () => {
  const all = new Set(Object.values(imports).flat());
  for (const m of ['uvicorn', 'uvloop', 'httptools', 'gunicorn', 'numpy', 'prometheus_client', 'sklearn', 'joblib', 'torch']) expect(all).toContain(m);
});

test.each(Object.keys(REQUIREMENTS) as Array<keyof typeof REQUIREMENTS>)('the %s image\'s requirement file pins every import and nothing unneeded', (image) => {
  const pins = readRequirements(REQUIREMENTS[image]).map((p) => p.name);
  expect(problems(imports, pins, NOT_IN_IMAGE[image])).toEqual([]);
  expect(new Set(pins).size).toBe(pins.length); // no package pinned twice
});

test.each(Object.keys(REQUIREMENTS) as Array<keyof typeof REQUIREMENTS>)('removing any one pin from the %s file is caught', (image) => {
  const pins = readRequirements(REQUIREMENTS[image]).map((p) => p.name);
  for (const removed of pins) {
    expect([removed, problems(imports, pins.filter((p) => p !== removed), NOT_IN_IMAGE[image]).length]).not.toEqual([removed, 0]);
  }
});

test('a pin nothing needs is caught, and so is a line that is not an exact pin', () => {
  const pins = readRequirements(REQUIREMENTS.cpu).map((p) => p.name);
  expect(problems(imports, [...pins, 'sympy'], NOT_IN_IMAGE.cpu)).toEqual(['sympy is pinned, but nothing imports it and no needed pin requires it']);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'req-')), 'requirements.txt');
  fs.writeFileSync(file, 'numpy>=2\n');
  expect(() => readRequirements(file)).toThrow("requirements.txt: 'numpy>=2' is not an exact pin (name==version)");
  expect(normalize('Typing_Extensions')).toBe('typing-extensions');
});

/** The first release of each package that fixed a known vulnerability: no image may pin one older. */
const FIXED_IN: Record<string, [version: string, advisories: string]> = {
  'torch': ['2.6.0', 'CVE-2025-32434: torch.load with weights_only=True could run code'],
  'h11': ['0.16.0', 'CVE-2025-43859: request smuggling through chunked bodies'],
  'gunicorn': ['23.0.0', 'CVE-2024-1135 and CVE-2024-6827: request smuggling'],
  'jinja2': ['3.1.6', 'CVE-2025-27516: sandbox escape'],
};

function atLeast(version: string, minimum: string): boolean {
  const [a, b] = [version, minimum].map((v) => v.split('.').map((n) => parseInt(n, 10)));
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

test.each(Object.keys(REQUIREMENTS) as Array<keyof typeof REQUIREMENTS>)('the %s image pins no release older than a known vulnerability\'s fix', (image) => {
  for (const pin of readRequirements(REQUIREMENTS[image])) {
    const fixed = FIXED_IN[pin.name];
    if (fixed) expect([pin.name, pin.version, atLeast(pin.version, fixed[0])]).toEqual([pin.name, pin.version, true]);
  }
  expect(atLeast('2.5.1', '2.6.0')).toBe(false);
  expect(atLeast('0.16.0', '0.16.0')).toBe(true);
});

