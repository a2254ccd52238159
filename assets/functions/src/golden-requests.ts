import * as http from 'node:http';
import * as https from 'node:https';
import { DescribeNetworkInterfacesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DescribeListenersCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Answer, checkGolden, parseGoldenFile } from '../../../lib/rollout/golden-file';

/**
 * The golden-request check: an ECS deployment lifecycle hook (POST_TEST_TRAFFIC_SHIFT). By then the
 * test rule on the load balancer's listener routes to the new tasks only; production still goes to
 * the old ones. The hook sends every golden request through that rule and answers SUCCEEDED when
 * each answer matches, in time; any mismatch, error or slow answer is FAILED, and ECS rolls back.
 *
 * It runs in the VPC and reaches the load balancer through its private addresses, with the test
 * header and the service's secret value for it: the test rule admits nothing else (its conditions
 * are the VPC's CIDR and that header with that value, which CloudFormation resolves into the rule
 * and into this function's environment from a Secrets Manager secret).
 * The listener's port and protocol, and its load balancer, come from the listener itself, so the
 * hook works the same on a listener this library created and on a team's own.
 *
 * Environment: GOLDEN_BUCKET, GOLDEN_KEY (the golden file), LISTENER_ARN, ROUTE_PREFIX,
 * TEST_HEADER, TEST_HEADER_VALUE, MAX_LATENCY_MS.
 */
export interface HookResult {
  readonly hookStatus: 'SUCCEEDED' | 'FAILED';
}

interface Clients {
  readonly s3: S3Client;
  readonly ec2: EC2Client;
  readonly elb: ElasticLoadBalancingV2Client;
}

let clients: Clients | undefined;

/** Lambda calls it with (event, context): it takes nothing else from its caller. */
export async function handler(event: unknown): Promise<HookResult> {
  const aws = (clients ??= { s3: new S3Client({}), ec2: new EC2Client({}), elb: new ElasticLoadBalancingV2Client({}) });
  const env = process.env;
  const stage = (event as { lifecycleStage?: string })?.lifecycleStage ?? 'POST_TEST_TRAFFIC_SHIFT';
  try {
    const testHeader: [string, string] = [env.TEST_HEADER!, env.TEST_HEADER_VALUE ?? ''];
    if (!testHeader[0] || !testHeader[1]) throw new Error('TEST_HEADER and TEST_HEADER_VALUE must both be set: without them the test rule admits nothing');
    const object = await aws.s3.send(new GetObjectCommand({ Bucket: env.GOLDEN_BUCKET!, Key: env.GOLDEN_KEY! }));
    const cases = parseGoldenFile(await object.Body!.transformToString());
    const listener = await describeListener(aws.elb, env.LISTENER_ARN!);
    const addresses = await privateAddresses(aws.ec2, listener.loadBalancer);
    const { port, secure } = listener;
    const maxLatencyMs = Number(env.MAX_LATENCY_MS);
    let next = 0;
    const send = (body: string) => post(secure, addresses[next++ % addresses.length], port, `${env.ROUTE_PREFIX ?? ''}/predict`, testHeader, body, maxLatencyMs);
    const failures = await checkGolden(cases, send, maxLatencyMs);
    for (const f of failures) console.error(`golden request "${f.name}" failed: ${f.reason}`);
    if (failures.length > 0) {
      console.error(`${stage}: ${failures.length} of ${cases.length} golden requests failed against the new tasks: the deployment rolls back`);
      return { hookStatus: 'FAILED' };
    }
    console.log(`${stage}: all ${cases.length} golden requests answered as expected by the new tasks`);
    return { hookStatus: 'SUCCEEDED' };
  } catch (err) {
    console.error(`${stage}: the golden requests could not be checked, so the deployment rolls back: ${(err as Error).name}: ${(err as Error).message}`);
    return { hookStatus: 'FAILED' };
  }
}

/** The listener's port and protocol, and its load balancer's name as ENI descriptions give it (app/<name>/<id>). */
async function describeListener(elb: ElasticLoadBalancingV2Client, arn: string): Promise<{ port: number; secure: boolean; loadBalancer: string }> {
  const described = await elb.send(new DescribeListenersCommand({ ListenerArns: [arn] }));
  const listener = described.Listeners?.[0];
  if (!listener?.LoadBalancerArn || !listener.Port) throw new Error(`the listener ${arn} was not found`);
  if (listener.Protocol !== 'HTTP' && listener.Protocol !== 'HTTPS') throw new Error(`the listener ${arn} speaks ${listener.Protocol}, not HTTP or HTTPS`);
  const loadBalancer = listener.LoadBalancerArn.split(':loadbalancer/')[1];
  if (!loadBalancer) throw new Error(`unexpected load balancer ARN ${listener.LoadBalancerArn}`);
  return { port: listener.Port, secure: listener.Protocol === 'HTTPS', loadBalancer };
}

/** The load balancer's addresses inside the VPC: the private IPs of its network interfaces. */
async function privateAddresses(ec2: EC2Client, loadBalancer: string): Promise<string[]> {
  const described = await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'description', Values: [`ELB ${loadBalancer}`] }] }));
  const addresses = (described.NetworkInterfaces ?? []).map((n) => n.PrivateIpAddress).filter((a): a is string => !!a);
  if (addresses.length === 0) throw new Error(`the load balancer ${loadBalancer} has no network interfaces`);
  return addresses;
}

/**
 * POSTs `body` to the test rule through one of the load balancer's addresses. Over HTTPS the
 * certificate's chain is verified; its name cannot match an IP address, so the name is not.
 */
function post(secure: boolean, address: string, port: number, path: string, testHeader: [string, string], body: string,
  maxLatencyMs: number): Promise<Answer> {
  const started = process.hrtime.bigint();
  const client = secure ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request({
      host: address, port, path, method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [testHeader[0]]: testHeader[1] },
      timeout: maxLatencyMs * 3 + 5000,
      ...(secure ? { checkServerIdentity: () => undefined } : {}),
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch { /* not JSON: kept as text */ }
        resolve({ status: res.statusCode ?? 0, body: parsed, ms });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${maxLatencyMs * 3 + 5000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
