import * as http from 'node:http';
import * as https from 'node:https';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** What CloudFormation sends a custom resource's function. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties: Record<string, string>;
}

/**
 * Answers CloudFormation: a PUT of the outcome to the presigned ResponseURL (with no content type,
 * which the URL's signature does not cover). Until this arrives, the stack operation waits.
 */
export function respond(event: CustomResourceEvent, status: 'SUCCESS' | 'FAILED', physicalResourceId: string, reason?: string): Promise<void> {
  const body = JSON.stringify({
    Status: status,
    Reason: reason?.slice(0, 1000) ?? status,
    PhysicalResourceId: physicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
  });
  const url = new URL(event.ResponseURL);
  // CloudFormation's response URLs are presigned HTTPS URLs of S3. Plain HTTP is accepted only on
  // this machine's loopback, where the tests stand in for CloudFormation.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    return Promise.reject(new Error(`refusing to send the result to ${url.protocol}//${url.host}: CloudFormation's response URLs are HTTPS`));
  }
  const client = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) }, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`CloudFormation's response URL answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('CloudFormation\'s response URL did not answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}
