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
