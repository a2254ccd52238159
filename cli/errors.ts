/**
 * Every failure of the CLI ends as one line on stderr and a non-zero exit. These helpers turn
 * what was thrown (an AWS SDK error, a cdk-assets failure, a bad flag) into that line, naming AWS
 * errors as such so that a CI log says at once whether it is credentials, permissions or a
 * missing resource.
 */

/** A failure whose message is already written for the user. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/** A command line that cannot work; exits 2, like most CLIs. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(`${message} (see --help)`, 2);
    this.name = 'UsageError';
  }
}

const CREDENTIAL_ERRORS = new Set([
  'UnrecognizedClientException', 'InvalidClientTokenId', 'ExpiredToken', 'ExpiredTokenException',
  'InvalidSignatureException', 'SignatureDoesNotMatch', 'IncompleteSignature',
]);
const ACCESS_ERRORS = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'AuthorizationError']);

/** One line that says what went wrong. */
export function describeError(err: unknown): string {
  const error = err as { name?: string; message?: string; $metadata?: unknown } | undefined;
  const name = error?.name ?? '';
  const message = oneLine(error?.message ?? String(err));
  if (err instanceof CliError) return message;
  if (name === 'CredentialsProviderError' || /Could not load credentials from any providers/.test(message)) {
    return `no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or assume a role, e.g. through OIDC in CI): ${message}`;
  }
  if (CREDENTIAL_ERRORS.has(name)) return `AWS rejected the credentials (${name}): ${message}`;
  if (ACCESS_ERRORS.has(name)) return `AWS denied access (${name}): ${message}`;
  const missingRepository = /No ECR repository named '([^']+)'/.exec(message);
  if (name === 'RepositoryNotFoundException' || missingRepository) {
    const what = missingRepository ? `no repository named '${missingRepository[1]}'` : message;
    return `ECR repository not found (RepositoryNotFoundException): ${what}; deploy the stack that creates it first (or run 'cdk bootstrap' for the default one)`;
  }
  if (name === 'ImageNotFoundException') return `image not found in ECR (ImageNotFoundException): ${message}`;
  if (error?.$metadata) return `AWS error ${name}: ${message}`;
  return message;
}

/**
 * Collapses whitespace and bounds the length, so a message stays one readable line. A long one
 * keeps its start (what failed) and its end (a tool's last words, usually the reason).
 */
export function oneLine(text: string, max = 600): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, 200)} … ${line.slice(line.length - (max - 203))}` : line;
}
