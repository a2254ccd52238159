import * as path from 'node:path';
import { respond } from '../../assets/functions/src/cfn-response';
import { EmulatedAutoScaling } from '../helpers/emulated-autoscaling';
import { invokeAsLambda } from '../helpers/lambda';

/**
 * The GPU service's release function, as Lambda runs it (the bundle `npm run build` makes, in a
 * Node.js process of its own), against a stub of the Auto Scaling API and of CloudFormation's
 * response URL on 127.0.0.1: on Delete it lifts scale-in protection from every protected
 * instance, and it always answers CloudFormation, so that a stack operation never hangs on it.
 */
const BUNDLE = path.join(__dirname, '..', '..', 'assets', 'functions', 'dist', 'release-instances', 'index.js');
let stub: EmulatedAutoScaling;

beforeAll(async () => {
  stub = await new EmulatedAutoScaling().start();
});

afterAll(async () => {
  await stub?.stop();
});

beforeEach(() => {
  stub.calls.length = 0;
  stub.responses.length = 0;
  stub.failWith = undefined;
});

async function invoke(requestType: 'Create' | 'Update' | 'Delete', group: string) {
  const event = {
    RequestType: requestType,
    ResponseURL: `${stub.url}/cloudformation-response?X-Amz-Signature=abc`,
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/ModelServing/1',
    RequestId: `req-${requestType}`,
    LogicalResourceId: 'ModelReleaseOnDelete',
    PhysicalResourceId: requestType === 'Create' ? undefined : group,
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:f', AutoScalingGroupName: group },
  };
  const result = await invokeAsLambda(BUNDLE, event, stub.env(), 30_000);
  expect(result.code).toBe(0);
  return { result, response: stub.responses[stub.responses.length - 1] };
}

test('on Delete, every protected instance is released, 50 per call, and CloudFormation hears SUCCESS', async () => {
  const instances = Array.from({ length: 120 }, (_, i) => ({ id: `i-${String(i).padStart(17, '0')}`, protectedFromScaleIn: i !== 7 }));
  stub.groups.set('gpu-asg', instances);
  const { result, response } = await invoke('Delete', 'gpu-asg');
  expect(instances.filter((i) => i.protectedFromScaleIn)).toEqual([]);
  const sets = stub.calls.filter((c) => c.action === 'SetInstanceProtection');
  expect(sets.map((c) => [...c.params.keys()].filter((k) => k.startsWith('InstanceIds.member.')).length)).toEqual([50, 50, 19]);
  expect(sets.every((c) => c.params.get('ProtectedFromScaleIn') === 'false' && c.params.get('AutoScalingGroupName') === 'gpu-asg')).toBe(true);
  expect(result.stdout).toContain('released 119 instance(s) of gpu-asg from scale-in protection');
  expect(response).toEqual({
    contentType: '', Status: 'SUCCESS', Reason: 'SUCCESS', PhysicalResourceId: 'gpu-asg',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/ModelServing/1', RequestId: 'req-Delete', LogicalResourceId: 'ModelReleaseOnDelete',
  });
});

test.each(['Create', 'Update'] as const)('on %s nothing is touched, and CloudFormation hears SUCCESS', async (type) => {
  stub.groups.set('gpu-asg', [{ id: 'i-1', protectedFromScaleIn: true }]);
  const { response } = await invoke(type, 'gpu-asg');
  expect(stub.calls).toEqual([]);
  expect(response).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'gpu-asg' });
});

test('a group already gone is nothing to release', async () => {
  const { response } = await invoke('Delete', 'deleted-asg');
  expect(stub.calls.map((c) => c.action)).toEqual(['DescribeAutoScalingGroups']);
  expect(response).toMatchObject({ Status: 'SUCCESS' });
});

test('an API error is reported to CloudFormation as FAILED with the reason, never left unanswered', async () => {
  stub.groups.set('gpu-asg', [{ id: 'i-1', protectedFromScaleIn: true }]);
  stub.failWith = 'Throttling';
  const { response } = await invoke('Delete', 'gpu-asg');
  expect(response).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'gpu-asg' });
  expect(response.Reason).toMatch(/^could not lift scale-in protection from the instances of gpu-asg: Throttling: Rate exceeded/);
});

test('the result goes to HTTPS response URLs only (plain HTTP on loopback alone, where the tests stand in for CloudFormation)', async () => {
  const event = {
    RequestType: 'Delete' as const, StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/S/1', RequestId: 'r', LogicalResourceId: 'L',
    ResourceProperties: {},
  };
  for (const url of ['http://example.com/response', 'http://10.0.0.5/response', 'ftp://example.com/response']) {
    await expect(respond({ ...event, ResponseURL: url }, 'SUCCESS', 'id')).rejects.toThrow(/^refusing to send the result to .*: CloudFormation's response URLs are HTTPS$/);
  }
});
