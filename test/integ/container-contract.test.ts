import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { loadConfig } from '../../assets/model-fetcher/src/config';
import { FargateModelService, GpuModelService, ModelSource, ServingImage } from '../../lib';
import { MODEL_FETCHER_DIR, MODEL_SERVER_DIR, SAMPLE_MODEL_DIR } from '../../lib/asset-paths';
import { FETCHER_ENV, ModelContainerContract, SERVER_ENV } from '../../lib/container-contract';
import { MODEL_FETCHER_BUNDLE } from '../../lib/functions/bundles';
import { freePort, requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { filterMatches } from '../helpers/filter-pattern';
import { containers, envOf } from '../helpers/stack';

/**
 * The container contract, held from both sides: what the constructs define (lib/container-contract.ts)
 * against what the images and their programs do. Change one side without the other and this fails.
 */
const SERVER_DIR = MODEL_SERVER_DIR;
const DOCKERFILES = {
  'server (CPU)': path.join(SERVER_DIR, 'Dockerfile'),
  'server (GPU)': path.join(SERVER_DIR, 'Dockerfile.gpu'),
  'fetcher': path.join(MODEL_FETCHER_DIR, 'Dockerfile'),
};

/** A Dockerfile's last value of an instruction, e.g. `USER`. */
function instruction(file: string, name: string): string {
  const lines = fs.readFileSync(file, 'utf8').replace(/\\\n\s*/g, ' ').split('\n');
  const found = lines.filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());
  if (found.length === 0) throw new Error(`${file} has no ${name}`);
  return found[found.length - 1];
}

/** What the server reads from its environment, and its defaults, from its own Settings. */
function serverSettings(): { read: string[]; defaults: Record<string, unknown> } {
  requireServerPython();
  const script = `
import json
from model_server.settings import Settings
read = set()
class Recorder(dict):
    def get(self, key, default=None):
        read.add(key)
        return super().get(key, default)
s = Settings.from_env(Recorder())
print(json.dumps({"read": sorted(read), "defaults": {"port": s.port, "metrics_port": s.metrics_port, "model_dir": s.model_dir, "health_path": s.health_path, "route_prefix": s.route_prefix, "emf_namespace": s.emf_namespace}}))
`;
  return JSON.parse(execFileSync(SYSTEM_PYTHON, ['-c', script], { cwd: SERVER_DIR, encoding: 'utf8' }));
}

/** What the fetcher reads from its environment, from its own loadConfig. */
function fetcherReads(): string[] {
  const read = new Set<string>();
  const env = new Proxy({ MODEL_URI: 's3://bucket/model.joblib', MODEL_DIR: '/models' } as Record<string, string>, {
    get: (target, key: string) => {
      read.add(key);
      return target[key];
    },
  });
  loadConfig(env);
  return [...read];
}

/** The server and fetcher environments the constructs synthesize, with every optional setting on. */
function synthesizedEnvironments(): Array<Record<string, unknown>> {
  const app = new App();
  const stack = new Stack(app, 'Contract', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc');
  const listener = new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc }).addListener('Http', { port: 80, defaultAction: elbv2.ListenerAction.fixedResponse(404) });
  new FargateModelService(stack, 'Cpu', {
    vpc, model: ModelSource.fromAsset(SAMPLE_MODEL_DIR),
    existingListener: { listener, priority: 1, pathPrefix: '/models/iris' },
    maxConcurrentRequests: 64,
  });
  new GpuModelService(stack, 'Gpu', { vpc, model: ModelSource.fromS3Uri('s3://team-models/resnet/model.pt', { sha256: 'a'.repeat(64) }) });
  const template = Template.fromStack(stack);
  return Object.values(template.findResources('AWS::ECS::TaskDefinition'))
    .flatMap((task) => (task.Properties.ContainerDefinitions as any[]).map((c) => envOf(c)));
}

test('both images run as the contract\'s user, and the server images expose its port and call its health check', () => {
  for (const file of Object.values(DOCKERFILES)) expect(instruction(file, 'USER')).toBe(ModelContainerContract.USER);
  const builtIn = ServingImage.fromModelServer().bind(new Stack());
  for (const file of [DOCKERFILES['server (CPU)'], DOCKERFILES['server (GPU)']]) {
    expect(instruction(file, 'EXPOSE')).toBe(`${ModelContainerContract.DEFAULT_PORT} ${ModelContainerContract.METRICS_PORT}`);
    expect(JSON.parse(/ CMD (\[.*\])$/.exec(instruction(file, 'HEALTHCHECK'))![1])).toEqual(builtIn.healthCheckCommand!.slice(1));
    expect(instruction(file, 'ENV').split(/\s+/)).toEqual(expect.arrayContaining([`PORT=${ModelContainerContract.DEFAULT_PORT}`, `METRICS_PORT=${ModelContainerContract.METRICS_PORT}`]));
  }
  expect(builtIn.user).toBe(ModelContainerContract.USER);
  for (const file of Object.values(DOCKERFILES)) expect(fs.readFileSync(file, 'utf8')).toMatch(new RegExp(`MODEL_DIR=${ModelContainerContract.MODEL_MOUNT_PATH}\\b`));
});

test('the server\'s defaults are the contract\'s, and it reads every variable the constructs set on it', () => {
  const server = serverSettings();
  expect(server.defaults).toEqual({
    port: ModelContainerContract.DEFAULT_PORT,
    metrics_port: ModelContainerContract.METRICS_PORT,
    model_dir: ModelContainerContract.MODEL_MOUNT_PATH,
    health_path: ModelContainerContract.DEFAULT_HEALTH_PATH,
    route_prefix: '',
    emf_namespace: ModelContainerContract.METRICS_NAMESPACE,
  });
  for (const name of Object.values(SERVER_ENV)) expect(server.read).toContain(name);
});

test('the fetcher reads every variable the constructs set on it (the AWS SDK reads the region)', () => {
  const read = fetcherReads();
  for (const name of Object.values(FETCHER_ENV).filter((n) => n !== FETCHER_ENV.region)) expect(read).toContain(name);
});

test('every variable in a synthesized task definition is one its container reads', () => {
  // aws-cdk-lib's Ec2TaskDefinition gives every awsvpc container AWS_REGION (for AWS SDKs; the server has none).
  const server = [...serverSettings().read, 'AWS_REGION'];
  const fetcher = [...fetcherReads(), FETCHER_ENV.region];
  const envs = synthesizedEnvironments();
  expect(envs).toHaveLength(4);
  for (const env of envs) {
    const readers = 'MODEL_URI' in env ? fetcher : server;
    for (const name of Object.keys(env)) expect([name, readers.includes(name)]).toEqual([name, true]);
  }
  // Every optional setting showed up somewhere, so none went unchecked.
  const all = new Set(envs.flatMap((e) => Object.keys(e)));
  for (const name of [...Object.values(SERVER_ENV), ...Object.values(FETCHER_ENV)]) expect([name, all.has(name)]).toEqual([name, true]);
});

test('a task that cannot start logs the markers the start-failure alarm counts: the fetcher\'s error line, the server\'s failed load', async () => {
  const [fetcherMarker, serverMarker] = ModelContainerContract.START_FAILURE_MARKERS;
  const fetcher = spawnSync(process.execPath, [MODEL_FETCHER_BUNDLE], {
    env: { PATH: process.env.PATH!, MODEL_URI: 'https://example.com/model.joblib', MODEL_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'contract-')) },
    encoding: 'utf8', timeout: 30_000,
  });
  expect(fetcher.status).not.toBe(0);
  expect(fetcher.stderr).toContain(fetcherMarker);
  // Beside each human line, the structured line the alarm's filter counts, as synth wrote the filter.
  const pattern = startFailuresPattern();
  expect(fetcher.stdout.split('\n').filter((l) => filterMatches(pattern, l))).toEqual([expect.stringContaining('"container":"model-fetcher"')]);
  requireServerPython();
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'contract-'));
  fs.writeFileSync(path.join(modelDir, 'model.joblib'), 'not a pickle');
  const server = spawnSync(SYSTEM_PYTHON, ['-m', 'model_server'], {
    cwd: SERVER_DIR, encoding: 'utf8', timeout: 60_000,
    env: { PATH: process.env.PATH!, HOST: '127.0.0.1', PORT: String(await freePort()), METRICS_PORT: String(await freePort()), WORKERS: '1', MODEL_DIR: modelDir },
  });
  expect(server.status).not.toBe(0);
  expect(server.stdout + server.stderr).toContain(serverMarker);
  expect(server.stdout.split('\n').filter((l) => filterMatches(pattern, l))).toEqual([expect.stringContaining('"container":"server"')]);
}, 90_000);

/** The start-failure metric filter's pattern, as synth writes it. */
function startFailuresPattern(): string {
  const stack = new Stack(new App(), 'T', { env: { account: '123456789012', region: 'eu-west-1' } });
  new FargateModelService(stack, 'M', { model: ModelSource.fromS3Uri('s3://team-models/m.joblib') });
  return Object.values<any>(Template.fromStack(stack).findResources('AWS::Logs::MetricFilter'))[0].Properties.FilterPattern;
}

test('nothing in the server reads the environment outside its settings (but the variables it sets for itself)', () => {
  const pkg = path.join(SERVER_DIR, 'model_server');
  const reads = fs.readdirSync(pkg, { recursive: true }).map(String).filter((f) => f.endsWith('.py') && f !== 'settings.py')
    .flatMap((f) => [...fs.readFileSync(path.join(pkg, f), 'utf8').matchAll(/os\.(?:environ(?:\.get)?[[(]|getenv\()"([A-Z_]+)"/g)].map((m) => `${f}:${m[1]}`));
  expect(reads.sort()).toEqual(['metrics.py:PROMETHEUS_MULTIPROC_DIR', 'runner.py:PROMETHEUS_MULTIPROC_DIR', 'runner.py:PROMETHEUS_MULTIPROC_DIR', 'worker.py:CUDA_VISIBLE_DEVICES']);
});

test('the containers of a synthesized task use the contract\'s mount path and user', () => {
  const app = new App();
  const stack = new Stack(app, 'T', { env: { account: '123456789012', region: 'eu-west-1' } });
  new FargateModelService(stack, 'M', { model: ModelSource.fromS3Uri('s3://team-models/m.joblib') });
  const { server, 'model-fetcher': fetcher } = containers(Template.fromStack(stack));
  for (const c of [server, fetcher]) {
    expect(c.User).toBe(ModelContainerContract.USER);
    expect(c.MountPoints[0].ContainerPath).toBe(ModelContainerContract.MODEL_MOUNT_PATH);
    expect(envOf(c).MODEL_DIR).toBe(ModelContainerContract.MODEL_MOUNT_PATH);
  }
});
