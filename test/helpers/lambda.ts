import { run, RunResult } from '../../scripts/processes';

/**
 * Invokes a bundled function's handler the way the Lambda Node.js runtime does: in a process of its
 * own, with the event and a context object as its two arguments, and only the environment given
 * (plus PATH). Resolves with the process's output and the handler's result (JSON), if it returned.
 */
export async function invokeAsLambda(
  bundle: string, event: unknown, env: Record<string, string>, timeoutMs = 60_000,
): Promise<RunResult & { result?: any }> {
  const script = `
const context = {
  functionName: 'fn', functionVersion: '$LATEST', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:fn',
  memoryLimitInMB: '256', awsRequestId: 'req-1', logGroupName: '/aws/lambda/fn', logStreamName: 'stream', callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 60000, done() {}, fail() {}, succeed() {},
};
require(process.argv[1]).handler(JSON.parse(process.argv[2]), context).then(
  (r) => { console.log('LAMBDA-RESULT ' + JSON.stringify(r === undefined ? null : r)); process.exit(0); },
  (e) => { console.error(e); process.exit(1); });
`;
  const out = await run(process.execPath, ['-e', script, bundle, JSON.stringify(event)], {
    env: { PATH: process.env.PATH!, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env }, timeoutMs,
  });
  const line = out.stdout.split('\n').find((l) => l.startsWith('LAMBDA-RESULT '));
  return { ...out, stdout: out.stdout.split('\n').filter((l) => !l.startsWith('LAMBDA-RESULT ')).join('\n'), result: line ? JSON.parse(line.slice(14)) : undefined };
}
