import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, SYSTEM_PYTHON } from '../../scripts/processes';

/**
 * The library as other CDK languages get it: jsii compiled it (`npm run build` runs jsii), the
 * Python package builds offline from its assembly, and its API is the committed baseline's or a
 * compatible extension of it (jsii-diff), so an accidental breaking change fails here.
 */
const ROOT = path.join(__dirname, '..', '..');
const QUIET = { JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' };
let wheel: string;

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, '.jsii'))) throw new Error("no .jsii assembly: 'npm run build' runs jsii (npm test builds first)");
  const built = await run(path.join(ROOT, 'scripts', 'python-package.sh'), [], { cwd: ROOT, env: { ...process.env, ...QUIET }, timeoutMs: 240_000 });
  if (built.code !== 0) throw new Error(`scripts/python-package.sh failed:\n${built.stdout}\n${built.stderr}`);
  wheel = built.stdout.trim().split('\n').pop()!;
}, 300_000);

test('jsii compiled the public API: every exported type, with the Python target', () => {
  const assembly = JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8'));
  expect(assembly.targets.python).toEqual({ distName: 'cdk-model-serving', module: 'cdk_model_serving' });
  const types = Object.keys(assembly.types).map((t) => t.replace('cdk-model-serving.', ''));
  expect(types).toEqual(expect.arrayContaining([
    'FargateModelService', 'GpuModelService', 'ModelServiceBase', 'ModelSource', 'ModelArchive', 'ServingImage',
    'ModelImageRepository', 'Rollout', 'GoldenRequests', 'ModelAlarmsOptions', 'ModelContainerContract', 'ExistingListenerOptions',
  ]));
  // Nothing internal leaks: the protected helpers are @internal, the implementation constructs unexported.
  expect(types).not.toEqual(expect.arrayContaining(['ModelEndpoint']));
  const base = assembly.types['cdk-model-serving.ModelServiceBase'];
  expect((base.methods ?? []).map((m: any) => m.name)).not.toContain('attachService');
});

test('the Python package: the module, its classes, and the props as keyword arguments', () => {
  const script = `
import ast, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
tree = ast.parse(z.read("cdk_model_serving/__init__.py").decode())
classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
def fn(cls, name):
    return next(f for f in classes[cls].body if isinstance(f, ast.FunctionDef) and f.name == name)
def kwargs(cls, name):
    f = fn(cls, name)
    return {"positional": [a.arg for a in f.args.args], "keyword": sorted(a.arg for a in f.args.kwonlyargs)}
meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
print(json.dumps({
    "files": sorted(z.namelist()),
    "classes": sorted(classes),
    "fargate": kwargs("FargateModelService", "__init__"),
    "gpu": kwargs("GpuModelService", "__init__"),
    "canary": kwargs("Rollout", "canary"),
    "from_file": kwargs("GoldenRequests", "from_file"),
    "archive": [t.id for n in classes["ModelArchive"].body if isinstance(n, ast.Assign) for t in n.targets],
    "metrics": sorted(f.name for f in classes["ModelServiceBase"].body if isinstance(f, ast.FunctionDef) and f.name.startswith("metric_")),
    "requires": [l.split(": ", 1)[1] for l in meta.splitlines() if l.startswith("Requires-Dist: ")],
}))
`;
  const found = JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', script, wheel], { encoding: 'utf8' }));
  expect(found.files).toEqual(expect.arrayContaining(['cdk_model_serving/__init__.py', 'cdk_model_serving/py.typed', 'cdk_model_serving/_jsii/cdk-model-serving@0.1.0.jsii.tgz']));
  expect(found.classes).toEqual(expect.arrayContaining(['FargateModelService', 'FargateModelServiceProps', 'GpuModelService', 'Rollout', 'GoldenRequests', 'ModelSource', 'ModelArchive']));
  expect(found.fargate.positional).toEqual(['self', 'scope', 'id']);
  expect(found.fargate.keyword).toEqual(expect.arrayContaining(['model', 'cpu', 'memory_limit_mib', 'rollout', 'golden_requests', 'alarms', 'existing_listener', 'model_version', 'dashboard']));
  expect(found.gpu.keyword).toEqual(expect.arrayContaining(['model', 'instance_type', 'gpu_count', 'spot', 'max_instances']));
  expect(found.canary.keyword).toEqual(['bake_time', 'canary_bake_time', 'percent']);
  expect(found.from_file).toEqual({ positional: ['cls', 'file_path'], keyword: ['max_latency'] });
  expect(found.archive).toEqual(['ZIP']);
  expect(found.metrics).toEqual(expect.arrayContaining(['metric_latency', 'metric_request_count', 'metric_error_rate', 'metric_model_latency']));
  expect(found.requires).toEqual(expect.arrayContaining(['aws-cdk-lib (<3.0.0,>=2.276.0)', 'constructs (<11.0.0,>=10.8.1)', expect.stringMatching(/^jsii \(/)]));
});

test('the API is the committed baseline\'s (jsii-diff), and a breaking change is caught', async () => {
  const diff = (updated: string) => run(path.join(ROOT, 'node_modules', '.bin', 'jsii-diff'), ['api/.baseline', updated], { cwd: ROOT, env: { ...process.env, ...QUIET }, timeoutMs: 120_000 });
  const same = await diff('.');
  expect([same.code, same.stdout + same.stderr]).toEqual([0, expect.anything()]);
  // The check is live: the same assembly without GoldenRequests is an incompatible change.
  const broken = path.join(ROOT, 'dist', 'jsii-diff-check');
  fs.mkdirSync(broken, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'api', '.baseline', 'package.json'), path.join(broken, 'package.json'));
  const assembly = JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8'));
  delete assembly.types['cdk-model-serving.GoldenRequests'];
  fs.writeFileSync(path.join(broken, '.jsii'), JSON.stringify(assembly));
  try {
    const result = await diff('dist/jsii-diff-check');
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('CLASS cdk-model-serving.GoldenRequests: has been removed');
  } finally {
    // Another assembly of the same name in the tree would confuse jsii-docgen.
    fs.rmSync(broken, { recursive: true, force: true });
  }
}, 240_000);

test('API.md is what jsii-docgen makes of the current API (npm run docgen)', async () => {
  const fresh = path.join(ROOT, 'dist', 'API.generated.md');
  const made = await run(path.join(ROOT, 'node_modules', '.bin', 'jsii-docgen'), ['-o', fresh], { cwd: ROOT, env: { ...process.env, ...QUIET }, timeoutMs: 120_000 });
  expect(made.code).toBe(0);
  // It documents this build's assembly, not another of the same name (the baseline): every
  // property of every type the build has is there.
  const generated = fs.readFileSync(fresh, 'utf8');
  const assembly = JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8'));
  const publicProperties = (t: any) => (t.properties ?? []).filter((p: any) => !p.protected);
  const anchors = Object.values<any>(assembly.types).flatMap((t) => publicProperties(t).map((p: any) => `id="${t.fqn}.property.${p.name}"`));
  expect(anchors.filter((a) => !generated.includes(a))).toEqual([]);
  const committed = fs.readFileSync(path.join(ROOT, 'API.md'), 'utf8');
  if (committed !== generated) throw new Error("API.md is out of date with the TSDoc: run 'npm run docgen' and commit API.md");
}, 120_000);

test('the README\'s Python example calls the package\'s classes with keyword arguments they take', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const example = /```python\n([\s\S]*?)```/.exec(readme)![1];
  const script = `
import ast, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
package = ast.parse(z.read("cdk_model_serving/__init__.py").decode())
classes = {n.name: n for n in package.body if isinstance(n, ast.ClassDef)}
def accepted(cls, method):
    f = next((f for f in classes[cls].body if isinstance(f, ast.FunctionDef) and f.name == method), None)
    return None if f is None else {a.arg for a in f.args.kwonlyargs + f.args.args}
example = ast.parse(sys.argv[2])
problems, calls = [], 0
imported = [a.name for n in example.body if isinstance(n, ast.ImportFrom) and n.module == "cdk_model_serving" for a in n.names]
problems += [f"{name} is not in the package" for name in imported if name not in classes]
for node in ast.walk(example):
    if not isinstance(node, ast.Call):
        continue
    f = node.func
    if isinstance(f, ast.Name) and f.id in classes:
        cls, method = f.id, "__init__"
    elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in classes:
        cls, method = f.value.id, f.attr
    else:
        continue
    calls += 1
    names = accepted(cls, method)
    if names is None:
        problems.append(f"{cls}.{method} does not exist")
        continue
    problems += [f"{cls}.{method} takes no {k.arg}" for k in node.keywords if k.arg not in names]
print(json.dumps({"imported": imported, "calls": calls, "problems": problems}))
`;
  const found = JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', script, wheel, example], { encoding: 'utf8' }));
  expect(found.imported).toEqual(['FargateModelService', 'GoldenRequests', 'ModelSource', 'Rollout']);
  expect(found.calls).toBeGreaterThanOrEqual(4);
  expect(found.problems).toEqual([]);
});
