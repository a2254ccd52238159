import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetManifest, DockerImageManifestEntry, IAws } from '@aws-cdk/cdk-assets-lib';
import { CliError } from './errors';

/** Where an image asset of a synthesized app is published: one destination of one asset. */
export interface ImageDestination {
  /** `assetId:destinationId`, as cdk-assets names it. */
  readonly id: string;
  readonly displayName: string;
  readonly repositoryName: string;
  readonly imageTag: string;
  readonly region?: string;
  readonly assumeRoleArn?: string;
  readonly assumeRoleExternalId?: string;
}

/** The asset manifests of a cloud assembly, nested assemblies (stages) included. */
export function assetManifests(assemblyDir: string): AssetManifest[] {
  const manifestFile = path.join(assemblyDir, 'manifest.json');
  if (!fs.existsSync(manifestFile)) {
    throw new CliError(`${assemblyDir} is not a cloud assembly (it has no manifest.json): run 'cdk synth' first, or point --app at its output directory`);
  }
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  const found: AssetManifest[] = [];
  for (const artifact of Object.values<any>(manifest.artifacts ?? {})) {
    if (artifact.type === 'cdk:asset-manifest') {
      found.push(AssetManifest.fromFile(path.join(assemblyDir, artifact.properties.file)));
    } else if (artifact.type === 'cdk:cloud-assembly') {
      found.push(...assetManifests(path.join(assemblyDir, artifact.properties.directoryName)));
    }
  }
  return found;
}

/** Every image destination in the manifests, with `${AWS::...}` placeholders resolved. */
export async function imageDestinations(manifests: AssetManifest[], aws: IAws): Promise<ImageDestination[]> {
  const destinations: ImageDestination[] = [];
  const seen = new Set<string>();
  for (const manifest of manifests) {
    for (const entry of manifest.entries) {
      if (!(entry instanceof DockerImageManifestEntry)) continue;
      const d = await resolvePlaceholders(entry.destination, aws);
      // Two stacks may share an asset; it is one image in one repository.
      const key = `${d.region}|${d.repositoryName}|${d.imageTag}`;
      if (seen.has(key)) continue;
      seen.add(key);
      destinations.push({
        id: `${entry.id.assetId}:${entry.id.destinationId}`,
        displayName: entry.displayName(false),
        repositoryName: d.repositoryName,
        imageTag: d.imageTag,
        region: d.region,
        assumeRoleArn: d.assumeRoleArn,
        assumeRoleExternalId: d.assumeRoleExternalId,
      });
    }
  }
  return destinations;
}

/** Replaces the account, partition and region placeholders of an environment-agnostic stack. */
async function resolvePlaceholders<T extends { region?: string }>(destination: T, aws: IAws): Promise<T> {
  const text = JSON.stringify(destination);
  if (!text.includes('${AWS::')) return destination;
  const region = destination.region && !destination.region.includes('${') ? destination.region : await aws.discoverDefaultRegion();
  const account = /\$\{AWS::(AccountId|Partition)\}/.test(text) ? await aws.discoverCurrentAccount() : undefined;
  return JSON.parse(text.replace(/\$\{AWS::(AccountId|Partition|Region)\}/g, (_, key: string) =>
    key === 'Region' ? region : key === 'AccountId' ? account!.accountId : account!.partition));
}
