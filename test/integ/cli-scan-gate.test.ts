import { createHash } from 'node:crypto';
import * as os from 'node:os';
import { errorLine, requireBuiltCli, runCli } from '../helpers/cli';
import { EmulatedEcr } from '../helpers/emulated-ecr';

/**
 * `cdk-model-serving scan-gate` as a CI job runs it, against the emulated ECR API (the one part of
 * AWS that cannot run here), with scan results scripted per image.
 */
const REPO = 'iris-model-server';
let ecr: EmulatedEcr;
let n = 0;

beforeAll(async () => {
  requireBuiltCli();
  ecr = await new EmulatedEcr().start();
  ecr.repositories.add(REPO);
  ecr.repositories.add('locked');
  ecr.denied.add('locked');
});

afterAll(async () => {
  await ecr?.stop();
});

/** A fresh digest for each test, so that scripts never collide. */
function digest(): string {
  return `sha256:${createHash('sha256').update(`image-${n++}`).digest('hex')}`;
}

function gate(image: string, ...extra: string[]) {
  return runCli(['scan-gate', '--repository', REPO, '--image-digest', image, '--interval', '0.2', '--timeout', '20', ...extra], { ...ecr.env(), HOME: os.tmpdir() });
}

const LOW = { name: 'CVE-2023-0001', severity: 'LOW', packageName: 'tar', packageVersion: '1.34' };
const MEDIUM = { name: 'CVE-2023-0002', severity: 'MEDIUM', packageName: 'zlib1g', packageVersion: '1.2.13' };
const CRITICAL = { name: 'CVE-2024-9999', severity: 'CRITICAL', packageName: 'openssl', packageVersion: '3.0.11' };
const HIGH = { name: 'CVE-2024-8888', severity: 'HIGH', packageName: 'libexpat1', packageVersion: '2.5.0' };

test('a clean scan passes', async () => {
  const image = digest();
  ecr.scan(image, { findings: [] });
  const result = await gate(image);
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(`${REPO}@${image}: COMPLETE, no findings`);
  expect(result.stdout).toContain('scan gate passed: no findings at or above HIGH');
});

test('findings below the threshold pass, and are listed', async () => {
  const image = digest();
  ecr.scan(image, { findings: [LOW, MEDIUM] });
  const result = await gate(image);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/SEVERITY\s+FINDING\s+PACKAGE\s+IMAGE\s+GATE/);
  expect(result.stdout).toMatch(/MEDIUM\s+CVE-2023-0002\s+zlib1g 1\.2\.13/);
  expect(result.stdout).toMatch(/LOW\s+CVE-2023-0001\s+tar 1\.34/);
  // ... and the same findings fail a stricter gate.
  const strict = await gate(image, '--severity', 'medium');
  expect(strict.code).toBe(1);
  expect(errorLine(strict)).toContain('1 finding(s) at or above MEDIUM (1 MEDIUM)');
});

test('a critical finding fails the gate with one line, and the table marks it', async () => {
  const image = digest();
  ecr.scan(image, { findings: [LOW, CRITICAL] });
  const result = await gate(image);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/CRITICAL\s+CVE-2024-9999\s+openssl 3\.0\.11\s+\S+\s+BLOCKS/);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(errorLine(result)).toBe(
    `cdk-model-serving scan-gate: 1 finding(s) at or above HIGH (1 CRITICAL) in ${REPO}@${image}: fix them, or --ignore an id with a reason`);
});

test('--json reads every page of findings and says which block', async () => {
  const image = digest();
  // Five findings: three pages of the emulated API.
  ecr.scan(image, { findings: [LOW, MEDIUM, HIGH, CRITICAL, { ...LOW, name: 'CVE-2023-0003' }] });
  const result = await gate(image, '--json');
  expect(result.code).toBe(1);
  const report = JSON.parse(result.stdout);
  expect(report).toMatchObject({ threshold: 'HIGH', passed: false });
  expect(report.images).toHaveLength(1);
  expect(report.images[0]).toMatchObject({ imageDigest: image, status: 'COMPLETE', counts: { LOW: 2, MEDIUM: 1, HIGH: 1, CRITICAL: 1 } });
  const blocking = report.images[0].findings.filter((f: any) => f.blocking).map((f: any) => f.id).sort();
  expect(blocking).toEqual(['CVE-2024-8888', 'CVE-2024-9999']);
  expect(report.images[0].findings).toHaveLength(5);
  expect(errorLine(result)).toContain('2 finding(s) at or above HIGH (1 CRITICAL, 1 HIGH)');
});

test('--ignore lets a named finding through', async () => {
  const image = digest();
  ecr.scan(image, { findings: [CRITICAL] });
  const result = await gate(image, '--ignore', 'CVE-2024-9999');
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/CVE-2024-9999.*ignored/);
});

test('enhanced (Inspector) findings are gated too', async () => {
  const image = digest();
  ecr.scan(image, { enhanced: true, status: 'ACTIVE', findings: [HIGH] });
  const result = await gate(image);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/HIGH\s+CVE-2024-8888\s+libexpat1 2\.5\.0/);
});

test('it waits for a scan in progress, then gates on its result', async () => {
  const image = digest();
  ecr.scan(image, { inProgressPolls: 3, findings: [MEDIUM] });
  const before = ecr.calls.length;
  const result = await gate(image);
  expect(result.code).toBe(0);
  expect(result.stderr).toContain('scan IN_PROGRESS');
  const polls = ecr.calls.slice(before).filter((c) => c.action === 'DescribeImageScanFindings');
  expect(polls).toHaveLength(4);
});

test('a scan that never completes fails within its bound', async () => {
  const image = digest();
  ecr.scan(image, { inProgressPolls: Infinity });
  const result = await runCli(['scan-gate', '--repository', REPO, '--image-digest', image, '--interval', '0.5', '--timeout', '3'], ecr.env());
  expect(result.code).toBe(1);
  expect(result.seconds).toBeLessThan(10);
  expect(errorLine(result)).toContain(`the ECR scan of ${REPO}@${image} did not complete within 3 s (last status: IN_PROGRESS)`);
});

test('an image that ECR never scans fails within its bound, pointing at scan on push', async () => {
  const result = await runCli(['scan-gate', '--repository', REPO, '--image-digest', digest(), '--interval', '0.5', '--timeout', '2'], ecr.env());
  expect(result.code).toBe(1);
  expect(errorLine(result)).toMatch(/did not complete within 2 s \(last status: not started\): ECR has no scan of it: is scan on push enabled/);
});

test('a failed scan fails the gate with ECR\'s reason', async () => {
  const image = digest();
  ecr.scan(image, { status: 'FAILED' });
  const result = await gate(image);
  expect(result.code).toBe(1);
  expect(errorLine(result)).toContain('ended FAILED: UnsupportedImageError');
});

describe('the gate fails closed', () => {
  test.each([
    ['basic scanning\'s UNDEFINED', { findings: [{ ...LOW, name: 'CVE-2024-0404', severity: 'UNDEFINED' }] }],
    ['enhanced scanning\'s UNTRIAGED', { enhanced: true, findings: [{ ...LOW, name: 'CVE-2024-0404', severity: 'UNTRIAGED' }] }],
  ])('%s blocks (its risk is unknown) unless --allow-unranked', async (_name, script) => {
    const image = digest();
    ecr.scan(image, script);
    const blocked = await gate(image);
    expect(blocked.code).toBe(1);
    expect(errorLine(blocked)).toMatch(/1 finding\(s\) at or above HIGH or unranked \(1 (UNDEFINED|UNTRIAGED)\) .*: fix them, or --ignore an id with a reason, or --allow-unranked$/);
    const allowed = await gate(image, '--allow-unranked');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/(UNDEFINED|UNTRIAGED)\s+CVE-2024-0404/);
  });

  test('a lowercase severity is the same severity', async () => {
    const image = digest();
    ecr.scan(image, { findings: [{ ...CRITICAL, severity: 'critical' }] });
    const result = await gate(image);
    expect(result.code).toBe(1);
    expect(errorLine(result)).toContain('1 finding(s) at or above HIGH (1 CRITICAL)');
  });

  test('a summary that counts findings the list does not hold is refused', async () => {
    const image = digest();
    ecr.scan(image, { findings: [], counts: { CRITICAL: 3 } });
    const result = await gate(image);
    expect(result.code).toBe(1);
    expect(errorLine(result)).toBe(`cdk-model-serving scan-gate: ECR's summary of ${REPO}@${image} counts CRITICAL 3, but it listed none: refusing an image whose findings cannot be read in full`);
  });

  test.each(['LIMIT_EXCEEDED', 'IMAGE_ARCHIVED', 'SOMETHING_NEW'])('a scan that ended %s fails at once, not after the timeout', async (status) => {
    const image = digest();
    ecr.scan(image, { status });
    const result = await gate(image);
    expect(result.code).toBe(1);
    expect(errorLine(result)).toContain(`the ECR scan of ${REPO}@${image} ended ${status}`);
    expect(result.seconds).toBeLessThan(10); // the timeout is 20 s
  });

  test('a scan older than --max-scan-age is refused, with how to start a new one', async () => {
    const image = digest();
    ecr.scan(image, { findings: [], completedAt: Date.now() / 1000 - 40 * 86400 });
    const old = await gate(image);
    expect(old.code).toBe(1);
    expect(errorLine(old)).toBe(`cdk-model-serving scan-gate: the ECR scan of ${REPO}@${image} completed 40 days ago, more than --max-scan-age 30: ` +
      `start a new one ('aws ecr start-image-scan --repository-name ${REPO} --image-id imageDigest=${image}') and gate again`);
    expect((await gate(image, '--max-scan-age', '60')).code).toBe(0);
  });
});

describe('AWS errors are named as such, in one line', () => {
  test('a repository that does not exist', async () => {
    const result = await runCli(['scan-gate', '--repository', 'no-such-repo', '--image-digest', digest()], ecr.env());
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(errorLine(result)).toMatch(/^cdk-model-serving scan-gate: ECR repository not found \(RepositoryNotFoundException\): The repository with name 'no-such-repo' does not exist/);
  });

  test('access denied', async () => {
    const result = await runCli(['scan-gate', '--repository', 'locked', '--image-digest', digest()], ecr.env());
    expect(result.code).toBe(1);
    expect(errorLine(result)).toMatch(/^cdk-model-serving scan-gate: AWS denied access \(AccessDeniedException\): User: .* is not authorized/);
  });

  test('no credentials at all', async () => {
    const { AWS_ACCESS_KEY_ID: _id, AWS_SECRET_ACCESS_KEY: _secret, ...env } = ecr.env();
    const result = await runCli(['scan-gate', '--repository', REPO, '--image-digest', digest()], { ...env, HOME: os.tmpdir() });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(errorLine(result)).toMatch(/^cdk-model-serving scan-gate: no AWS credentials found/);
    expect(ecr.calls.filter((c) => c.accessKeyId === undefined)).toHaveLength(0);
  });
});

test.each([
  [['--severity', 'SEVERE'], /--severity must be one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL, got 'SEVERE'/],
  [['--image-digest', 'latest'], /--image-digest must look like sha256:<64 hex digits>/],
  [['--timeout', '0'], /--timeout must be a positive number of seconds/],
  [['--bogus'], /Unknown option '--bogus'/],
])('a bad command line exits 2 and says what to change: %j', async (...[args, message]) => {
  const result = await runCli(['scan-gate', '--repository', REPO, '--image-digest', digest(), ...args], ecr.env());
  expect(result.code).toBe(2);
  expect(errorLine(result)).toMatch(message);
});
