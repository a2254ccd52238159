import { ECRClient } from '@aws-sdk/client-ecr';
import { fromNodeProviderChain, fromTemporaryCredentials } from '@aws-sdk/credential-providers';

/** How to reach ECR for one image: its region, and the role to assume (the bootstrap image-publishing role). */
export interface EcrAccess {
  readonly region?: string;
  readonly assumeRoleArn?: string;
  readonly assumeRoleExternalId?: string;
}

/**
 * An ECR client with the default credential chain (environment, profile, web identity, ...),
 * assuming `assumeRoleArn` when given, as cdk-assets does. Endpoints follow the SDK's
 * AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL_STS variables.
 */
export function ecrClient(access: EcrAccess = {}): ECRClient {
  // One client per region and role: several images in one repository share its role session and connections.
  const key = JSON.stringify([access.region, access.assumeRoleArn, access.assumeRoleExternalId]);
  let client = clients.get(key);
  if (!client) clients.set(key, client = newEcrClient(access));
  return client;
}

const clients = new Map<string, ECRClient>();

function newEcrClient(access: EcrAccess): ECRClient {
  const base = fromNodeProviderChain({ clientConfig: { region: access.region } });
  const credentials = access.assumeRoleArn
    ? fromTemporaryCredentials({
      masterCredentials: base,
      params: { RoleArn: access.assumeRoleArn, ExternalId: access.assumeRoleExternalId, RoleSessionName: 'cdk-model-serving' },
      clientConfig: { region: access.region },
    })
    : base;
  return new ECRClient({ region: access.region, credentials, maxAttempts: 5 });
}
