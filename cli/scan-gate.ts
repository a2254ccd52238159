import { parseArgs } from 'node:util';
import { DefaultAwsClient } from '@aws-cdk/cdk-assets-lib';
import { DescribeImageScanFindingsCommand, DescribeImageScanFindingsCommandOutput, ECRClient, ImageIdentifier } from '@aws-sdk/client-ecr';
import { assetManifests, imageDestinations } from './assembly';
import { EcrAccess, ecrClient } from './aws';
import { CliError, UsageError } from './errors';
import { positiveSeconds } from './options';
import { table } from './table';

export const SCAN_GATE_USAGE = `Usage:
  cdk-model-serving scan-gate [--app cdk.out] [options]          every image asset of a synthesized app
  cdk-model-serving scan-gate --repository NAME (--image-digest sha256:... | --image-tag TAG) [--region R] [options]

Waits for ECR's scan of each image (scan on push) and fails when a finding is at or above the
severity threshold.

Options:
  --severity LEVEL      INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL (default HIGH)
  --ignore ID           a finding to let through, e.g. CVE-2024-12345 (repeatable; say why in your workflow)
  --allow-unranked      let through findings whose severity ECR has not ranked (UNDEFINED,
                        UNTRIAGED); by default they block, as their risk is unknown
  --max-scan-age DAYS   refuse a scan that completed longer ago (default 30); start a new one
                        with 'aws ecr start-image-scan'
  --timeout SECONDS     how long to wait for the scans, all together (default 900)
  --interval SECONDS    between polls (default 10)
  --json                print the result as JSON on stdout`;

/** Severity levels, lowest first. Anything else (UNDEFINED, UNTRIAGED) is unranked. */
const SEVERITIES = ['INFORMATIONAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
type Severity = typeof SEVERITIES[number];
const isRanked = (severity: string): severity is Severity => SEVERITIES.includes(severity as Severity);
/** Unranked severities sort above CRITICAL in listings: nobody knows what they hide. */
const rank = (severity: string) => (isRanked(severity) ? SEVERITIES.indexOf(severity) : SEVERITIES.length);

/** Scan statuses worth waiting through; once done, the findings count. Any other status fails at once. */
const WAITING = new Set(['IN_PROGRESS', 'PENDING']);
const DONE = new Set(['COMPLETE', 'ACTIVE']);

interface Target {
  readonly label: string;
  readonly repositoryName: string;
  readonly imageId: ImageIdentifier;
  readonly access: EcrAccess;
}

export interface Finding {
  readonly id: string;
  readonly severity: string;
  readonly package?: string;
  readonly uri?: string;
  /** At or above the threshold and not ignored. */
  readonly blocking: boolean;
}

export interface ImageScan {
  readonly image: string;
  readonly repositoryName: string;
  readonly imageDigest?: string;
  readonly status: string;
  readonly counts: Record<string, number>;
  readonly findings: Finding[];
}

export async function scanGate(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'app': { type: 'string' },
      'repository': { type: 'string' },
      'image-digest': { type: 'string' },
      'image-tag': { type: 'string' },
      'region': { type: 'string' },
      'severity': { type: 'string', default: 'HIGH' },
      'ignore': { type: 'string', multiple: true, default: [] },
      'allow-unranked': { type: 'boolean', default: false },
      'max-scan-age': { type: 'string', default: '30' },
      'timeout': { type: 'string', default: '900' },
      'interval': { type: 'string', default: '10' },
      'json': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const threshold = values.severity!.toUpperCase();
  if (!SEVERITIES.includes(threshold as Severity)) throw new UsageError(`--severity must be one of ${SEVERITIES.join(', ')}, got '${values.severity}'`);
  const timeout = positiveSeconds('--timeout', values.timeout!);
  const interval = positiveSeconds('--interval', values.interval!);
  const ignored = new Set(values.ignore);
  const maxScanAgeDays = Number(values['max-scan-age']);
  if (!(maxScanAgeDays > 0)) throw new UsageError(`--max-scan-age must be a positive number of days, got '${values['max-scan-age']}'`);
  const targets = await resolveTargets(values);
  if (targets.length === 0) throw new CliError(`the assembly in ${values.app ?? 'cdk.out'} has no image assets to gate`);

  const deadline = Date.now() + timeout * 1000;
  const scans: ImageScan[] = [];
  for (const target of targets) {
    scans.push(await waitForScan(target, {
      deadline, interval, threshold, ignored, timeout, quiet: values.json!, allowUnranked: values['allow-unranked']!, maxScanAgeDays,
    }));
  }

  const blocking = scans.flatMap((s) => s.findings.filter((f) => f.blocking).map((f) => ({ ...f, image: s.image })));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ threshold, ignored: [...ignored], passed: blocking.length === 0, images: scans }, undefined, 2)}\n`);
  } else {
    const rows = scans.flatMap((s) => s.findings
      .sort((a, b) => rank(b.severity) - rank(a.severity) || a.id.localeCompare(b.id))
      .map((f) => [f.severity, f.id, f.package ?? '', s.image, f.blocking ? 'BLOCKS' : ignored.has(f.id) ? 'ignored' : '']));
    if (rows.length > 0) process.stdout.write(table(['SEVERITY', 'FINDING', 'PACKAGE', 'IMAGE', 'GATE'], rows));
    for (const s of scans) process.stdout.write(`${s.image}: ${s.status}, ${summary(s.counts)}\n`);
  }
  if (blocking.length > 0) {
    const severities = [...new Set(blocking.map((f) => f.severity))].sort((a, b) => rank(b) - rank(a));
    const bySeverity = severities.map((sev) => `${blocking.filter((f) => f.severity === sev).length} ${sev}`).join(', ');
    const images = [...new Set(blocking.map((f) => f.image))].join(', ');
    const unranked = severities.some((sev) => !isRanked(sev));
    throw new CliError(`${blocking.length} finding(s) at or above ${threshold}${unranked ? ' or unranked' : ''} (${bySeverity}) in ${images}: ` +
      `fix them, or --ignore an id with a reason${unranked ? ', or --allow-unranked' : ''}`);
  }
  if (!values.json) process.stdout.write(`scan gate passed: no findings at or above ${threshold}\n`);
  return 0;
}

async function resolveTargets(values: Record<string, unknown>): Promise<Target[]> {
  const repositoryName = values.repository as string | undefined;
  const digest = values['image-digest'] as string | undefined;
  const tag = values['image-tag'] as string | undefined;
  if (repositoryName) {
    if (values.app) throw new UsageError('give either --app or --repository, not both');
    if (!digest === !tag) throw new UsageError('with --repository, give exactly one of --image-digest and --image-tag');
    if (digest && !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new UsageError(`--image-digest must look like sha256:<64 hex digits>, got '${digest}'`);
    return [{
      label: digest ? `${repositoryName}@${digest}` : `${repositoryName}:${tag}`,
      repositoryName,
      imageId: digest ? { imageDigest: digest } : { imageTag: tag },
      access: { region: values.region as string | undefined },
    }];
  }
  if (digest || tag) throw new UsageError('--image-digest and --image-tag need --repository');
  const aws = new DefaultAwsClient();
  // The images of the assembly, read through the same role cdk-assets published them with.
  return (await imageDestinations(assetManifests((values.app as string | undefined) ?? 'cdk.out'), aws)).map((d) => ({
    label: `${d.repositoryName}:${d.imageTag}`,
    repositoryName: d.repositoryName,
    imageId: { imageTag: d.imageTag },
    access: {
      region: (values.region as string | undefined) ?? d.region,
      assumeRoleArn: d.assumeRoleArn,
      assumeRoleExternalId: d.assumeRoleExternalId,
    },
  }));
}

interface WaitOptions {
  readonly deadline: number;
  readonly interval: number;
  readonly timeout: number;
  readonly threshold: string;
  readonly ignored: Set<string>;
  readonly quiet: boolean;
  readonly allowUnranked: boolean;
  readonly maxScanAgeDays: number;
}

async function waitForScan(target: Target, options: WaitOptions): Promise<ImageScan> {
  const ecr = ecrClient(target.access);
  let last = 'not started';
  for (;;) {
    const first = await firstPage(ecr, target);
    const status = first?.imageScanStatus?.status ?? 'not started';
    if (first && DONE.has(status)) return collect(ecr, target, first, options);
    // Fail closed: FAILED, UNSUPPORTED_IMAGE, LIMIT_EXCEEDED, IMAGE_ARCHIVED, ... and statuses yet unknown.
    if (first && !WAITING.has(status)) {
      throw new CliError(`the ECR scan of ${target.label} ended ${status}: ${first.imageScanStatus?.description ?? 'no description'}`);
    }
    if (status !== last && !options.quiet) process.stderr.write(`${target.label}: scan ${status}\n`);
    last = status;
    if (Date.now() + options.interval * 1000 > options.deadline) {
      const hint = status === 'not started'
        ? 'ECR has no scan of it: is scan on push enabled on the repository (ModelImageRepository enables it)?'
        : 'raise --timeout, or look at the scan in the ECR console';
      throw new CliError(`the ECR scan of ${target.label} did not complete within ${options.timeout} s (last status: ${status}): ${hint}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.interval * 1000));
  }
}

/** The first page of findings, or undefined while ECR has no scan of the image yet. */
async function firstPage(ecr: ECRClient, target: Target): Promise<DescribeImageScanFindingsCommandOutput | undefined> {
  try {
    return await ecr.send(new DescribeImageScanFindingsCommand({ repositoryName: target.repositoryName, imageId: target.imageId }));
  } catch (err: any) {
    if (err?.name === 'ScanNotFoundException') return undefined; // pushed moments ago: the scan starts shortly
    throw err;
  }
}

async function collect(ecr: ECRClient, target: Target, first: DescribeImageScanFindingsCommandOutput, options: WaitOptions): Promise<ImageScan> {
  const findings: Finding[] = [];
  let page: DescribeImageScanFindingsCommandOutput = first;
  for (;;) {
    for (const f of page.imageScanFindings?.findings ?? []) {
      const attr = (key: string) => f.attributes?.find((a) => a.key === key)?.value;
      const pkg = [attr('package_name'), attr('package_version')].filter(Boolean).join(' ');
      findings.push(finding(f.name ?? 'unnamed', f.severity ?? 'UNDEFINED', pkg || undefined, f.uri, options));
    }
    for (const f of page.imageScanFindings?.enhancedFindings ?? []) {
      const details = f.packageVulnerabilityDetails;
      const pkg = details?.vulnerablePackages?.map((p) => [p.name, p.version].filter(Boolean).join(' ')).join(', ');
      findings.push(finding(details?.vulnerabilityId ?? f.title ?? f.findingArn ?? 'unnamed', f.severity ?? 'UNTRIAGED', pkg || undefined, details?.sourceUrl, options));
    }
    if (!page.nextToken) break;
    page = await ecr.send(new DescribeImageScanFindingsCommand({
      repositoryName: target.repositoryName, imageId: target.imageId, nextToken: page.nextToken,
    }));
  }
  const counts: Record<string, number> = {};
  for (const f of findings) counts[f.severity] = (counts[f.severity] ?? 0) + 1;
  // ECR's own summary must agree with the findings it listed: an image whose findings cannot be
  // read in full (a summary of three CRITICALs and a list of none) is not one to let through.
  const reported = first.imageScanFindings?.findingSeverityCounts;
  if (!reported) throw new CliError(`ECR's scan of ${target.label} has no finding counts: refusing findings that cannot be checked`);
  const summarized: Record<string, number> = {};
  for (const [severity, n] of Object.entries(reported)) if (n > 0) summarized[severity.toUpperCase()] = (summarized[severity.toUpperCase()] ?? 0) + n;
  if (describeCounts(summarized) !== describeCounts(counts)) {
    throw new CliError(`ECR's summary of ${target.label} counts ${describeCounts(summarized)}, but it listed ${describeCounts(counts)}: ` +
      'refusing an image whose findings cannot be read in full');
  }
  const completedAt = first.imageScanFindings?.imageScanCompletedAt;
  if (!completedAt) throw new CliError(`the ECR scan of ${target.label} has no completion time: refusing a scan of unknown age`);
  const ageDays = (Date.now() - completedAt.getTime()) / 86_400_000;
  if (ageDays > options.maxScanAgeDays) {
    throw new CliError(`the ECR scan of ${target.label} completed ${ageDays.toFixed(0)} days ago, more than --max-scan-age ${options.maxScanAgeDays}: ` +
      `start a new one ('aws ecr start-image-scan --repository-name ${target.repositoryName} --image-id ${target.imageId.imageDigest ? `imageDigest=${target.imageId.imageDigest}` : `imageTag=${target.imageId.imageTag}`}') and gate again`);
  }
  const digest = first.imageId?.imageDigest;
  return {
    image: digest ? `${target.repositoryName}@${digest}` : target.label,
    repositoryName: target.repositoryName,
    imageDigest: digest,
    status: first.imageScanStatus!.status!,
    counts,
    findings,
  };
}

function finding(id: string, rawSeverity: string, pkg: string | undefined, uri: string | undefined, options: WaitOptions): Finding {
  const severity = rawSeverity.toUpperCase();
  const atOrAbove = isRanked(severity) ? rank(severity) >= rank(options.threshold) : !options.allowUnranked;
  return { id, severity, package: pkg, uri, blocking: atOrAbove && !options.ignored.has(id) };
}

/** `CRITICAL 3, LOW 1` (or `none`), in a fixed order. */
function describeCounts(counts: Record<string, number>): string {
  const parts = Object.entries(counts).sort(([a], [b]) => rank(b) - rank(a) || a.localeCompare(b)).map(([sev, n]) => `${sev} ${n}`);
  return parts.length ? parts.join(', ') : 'none';
}

function summary(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return total === 0 ? 'no findings' : `${total} finding(s): ${describeCounts(counts)}`;
}
