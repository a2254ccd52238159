import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { MODEL_SERVER_DIR } from '../../lib/asset-paths';
import { requireServerPython, SYSTEM_PYTHON } from '../../scripts/processes';
import { ModelServerProcess } from '../helpers/model-server';
import { sampleModelFile } from '../helpers/pinned-stack';

/**
 * One model copy per GPU: gunicorn gives each worker a slot, and the worker in slot i sees only
 * GPU i % GPU_COUNT (CUDA_VISIBLE_DEVICES, set before PyTorch loads). Tested without a GPU, on
 * what each worker reports, and on a worker killed and replaced.
 */
let modelDir: string;

beforeAll(async () => {
  requireServerPython();
  modelDir = await fs.mkdtemp(path.join(os.tmpdir(), 'workers-model-'));
  await fs.copyFile(sampleModelFile(SYSTEM_PYTHON), path.join(modelDir, 'iris.joblib'));
});

afterAll(async () => {
  await fs.rm(modelDir, { recursive: true, force: true });
});

interface WorkerInfo {
  readonly slot: number;
  readonly pid: number;
  readonly cuda_visible_devices: string | null;
}

/** /health on a fresh connection each time, so the workers take turns accepting. */
function healthOnNewConnection(url: string): Promise<WorkerInfo & { status: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/health`, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** The workers seen answering within `timeoutMs`, by slot, once every slot in `slots` has answered healthy. */
async function workersBySlot(url: string, slots: number[], timeoutMs = 20_000, exclude = new Set<number>()): Promise<Map<number, WorkerInfo>> {
  const seen = new Map<number, WorkerInfo>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !slots.every((s) => seen.has(s))) {
    const health = await healthOnNewConnection(url).catch(() => undefined);
    if (health?.status === 'ok' && !exclude.has(health.pid)) seen.set(health.slot, health);
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen;
}

test('the slot and device logic: the lowest free slot, and GPU slot % GPU_COUNT', () => {
  const out = execFileSync(SYSTEM_PYTHON, ['-c', `
from model_server.worker_slots import free_slot, visible_device
print(free_slot([]), free_slot([0, 1]), free_slot([1, None]), free_slot([0, 2]))
print([visible_device(s, 2) for s in range(4)], visible_device(3, 1), visible_device(0, 0))
`], { cwd: MODEL_SERVER_DIR, encoding: 'utf8' });
  expect(out.trim().split('\n')).toEqual(['0 2 0 1', "['0', '1', '0', '1'] 0 None"]);
});

test('with 2 workers and GPU_COUNT=2 each worker sees its own GPU, and a replaced worker takes its slot and its GPU', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: modelDir, WORKERS: '2', GPU_COUNT: '2', HEALTH_DETAILS: 'true' });
  try {
    await server.waitForHealth(200);
    const workers = await workersBySlot(server.url, [0, 1]);
    expect([...workers.keys()].sort()).toEqual([0, 1]);
    expect(workers.get(0)!.cuda_visible_devices).toBe('0');
    expect(workers.get(1)!.cuda_visible_devices).toBe('1');

    // The worker holding GPU 1 dies; gunicorn forks a replacement, which must take slot 1 (GPU 1), not slot 2.
    const killed = workers.get(1)!.pid;
    process.kill(killed, 'SIGKILL');
    const after = await workersBySlot(server.url, [0, 1], 30_000, new Set([killed]));
    expect(after.get(1)).toMatchObject({ slot: 1, cuda_visible_devices: '1' });
    expect(after.get(1)!.pid).not.toBe(killed);
    expect(after.get(0)!.pid).toBe(workers.get(0)!.pid);
    expect([...after.keys()].sort()).toEqual([0, 1]);
  } finally {
    await server.stop();
  }
}, 90_000);

test('without GPU_COUNT no worker is given a device', async () => {
  const server = await ModelServerProcess.start({ MODEL_DIR: modelDir, WORKERS: '1', HEALTH_DETAILS: 'true' });
  try {
    const health = await server.waitForHealth(200);
    expect(health.body).toMatchObject({ slot: 0, cuda_visible_devices: null });
  } finally {
    await server.stop();
  }
}, 30_000);
