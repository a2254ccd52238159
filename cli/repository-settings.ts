import { DescribeRepositoriesCommand } from '@aws-sdk/client-ecr';
import { ImageDestination } from './assembly';
import { ecrClient } from './aws';
import { CliError } from './errors';

/**
 * Refuses to publish into a repository without the two settings the pipeline relies on: immutable
 * tags (a task definition names an image by its content-hash tag, which must never move to other
 * bytes) and scan on push (the scan gate waits for that scan). A ModelImageRepository and the CDK
 * bootstrap repository have both; a repository adopted with `--import-existing-resources` keeps
 * whatever settings it had, since CloudFormation does not change a resource it imports.
 * A repository that does not exist is left to cdk-assets, which names it.
 */
export async function checkRepositorySettings(destinations: ImageDestination[]): Promise<void> {
  const seen = new Set<string>();
  for (const destination of destinations) {
    const { repositoryName } = destination;
    const key = JSON.stringify([destination.region, destination.assumeRoleArn, repositoryName]);
    if (seen.has(key)) continue;
    seen.add(key);
    let repository;
    try {
      [repository] = (await ecrClient(destination).send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }))).repositories ?? [];
    } catch (err) {
      if ((err as Error).name === 'RepositoryNotFoundException') continue;
      throw err;
    }
    const problems: string[] = [];
    const fixes: string[] = [];
    if (repository?.imageTagMutability !== 'IMMUTABLE') {
      problems.push(`its tags are ${repository?.imageTagMutability ?? 'of unknown mutability'}, so an image's tag could be moved to other bytes`);
      fixes.push(`aws ecr put-image-tag-mutability --repository-name ${repositoryName} --image-tag-mutability IMMUTABLE`);
    }
    if (repository?.imageScanningConfiguration?.scanOnPush !== true) {
      problems.push('it does not scan on push, so the scan gate would wait for a scan that never comes');
      fixes.push(`aws ecr put-image-scanning-configuration --repository-name ${repositoryName} --image-scanning-configuration scanOnPush=true`);
    }
    if (problems.length > 0) {
      throw new CliError(`ECR repository '${repositoryName}' lacks the settings this pipeline relies on: ${problems.join('; ')}. ` +
        `(A repository adopted with --import-existing-resources keeps its own settings.) Set them with '${fixes.join("' and '")}', then publish again`);
    }
  }
}
