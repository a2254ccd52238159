import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FargateModelService, ModelSource } from '../../lib';
import { SAMPLE_MODEL_FILE } from '../../lib/asset-paths';
import { containers, envOf, templateOf } from '../helpers/stack';


function service(stack: Stack, model: ModelSource) {
  return new FargateModelService(stack, 'Model', { model });
}

/** The statements of the task role's policy. */
function taskRoleStatements(template: Template): any[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('TaskTaskRole') }] },
  });
  const docs = Object.values(policies);
  expect(docs).toHaveLength(1);
  return docs[0].Properties.PolicyDocument.Statement;
}

describe('ModelSource.fromAsset', () => {
  test('a file: uploaded as an asset, its SHA-256 handed to the fetcher, read access to that object only', () => {
    const template = templateOf((stack) => service(stack, ModelSource.fromAsset(SAMPLE_MODEL_FILE)));
    const sha = createHash('sha256').update(fs.readFileSync(SAMPLE_MODEL_FILE)).digest('hex');
    const env = envOf(containers(template)['model-fetcher']);
    expect(env.MODEL_SHA256).toBe(sha);
    expect(env.MODEL_UNPACK).toBeUndefined();
    const uri = env.MODEL_URI as string;
    expect(uri).toMatch(/^s3:\/\/cdk-hnb659fds-assets-123456789012-eu-west-1\/[0-9a-f]{64}\.joblib$/);
    const key = uri.replace('s3://cdk-hnb659fds-assets-123456789012-eu-west-1/', '');

    const statements = taskRoleStatements(template);
    expect(statements).toEqual([{
      Action: 's3:GetObject',
      Effect: 'Allow',
      Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::cdk-hnb659fds-assets-123456789012-eu-west-1/${key}`]] },
    }]);
  });

  test('a directory: uploaded as a zip archive that the fetcher unpacks, and checks file by file against the SHA-256s taken at synth', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-asset-'));
    fs.copyFileSync(SAMPLE_MODEL_FILE, path.join(dir, 'iris.joblib'));
    fs.mkdirSync(path.join(dir, 'meta'));
    fs.writeFileSync(path.join(dir, 'meta', 'labels.json'), '[]');
    const env = envOf(containers(templateOf((stack) => service(stack, ModelSource.fromAsset(dir))))['model-fetcher']);
    expect(env.MODEL_UNPACK).toBe('zip');
    expect(env.MODEL_SHA256).toBeUndefined();
    expect(JSON.stringify(env.MODEL_URI)).toMatch(/[0-9a-f]{64}\.zip/);
    const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    expect(JSON.parse(env.MODEL_MANIFEST as string)).toEqual({ 'iris.joblib': sha(SAMPLE_MODEL_FILE), 'meta/labels.json': sha(path.join(dir, 'meta', 'labels.json')) });
  });

  test('a directory of more files than a task definition can list is refused, with what to do', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-asset-'));
    for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(dir, `shard-${String(i).padStart(5, '0')}.bin`), String(i));
    expect(() => templateOf((stack) => service(stack, ModelSource.fromAsset(dir))))
      .toThrow(/ModelSource.fromAsset: invalid 'modelPath': .* has 400 files, too many for their SHA-256 list \(which the fetcher checks\) to fit the task definition: pack the model into one file/);
  });

  test('a path that does not exist fails with the path', () => {
    expect(() => ModelSource.fromAsset('/no/such/model.joblib'))
      .toThrow("ModelSource.fromAsset: invalid 'modelPath': /no/such/model.joblib does not exist; give a model file or a directory");
  });
});

describe('ModelSource.fromBucket', () => {
  test('an object: s3:GetObject on exactly that object, no listing, no KMS', () => {
    const template = templateOf((stack) => {
      const bucket = s3.Bucket.fromBucketName(stack, 'Bucket', 'team-models');
      service(stack, ModelSource.fromBucket(bucket, 'iris/v3/model.joblib'));
    });
    expect(envOf(containers(template)['model-fetcher']).MODEL_URI).toBe('s3://team-models/iris/v3/model.joblib');
    expect(taskRoleStatements(template)).toEqual([{
      Action: 's3:GetObject',
      Effect: 'Allow',
      Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::team-models/iris/v3/model.joblib']] },
    }]);
  });

  test('a prefix: s3:GetObject below it and s3:ListBucket limited to it by an s3:prefix condition', () => {
    const template = templateOf((stack) => {
      const bucket = s3.Bucket.fromBucketName(stack, 'Bucket', 'team-models');
      service(stack, ModelSource.fromBucket(bucket, 'team/m1/'));
    });
    expect(envOf(containers(template)['model-fetcher']).MODEL_URI).toBe('s3://team-models/team/m1/');
    expect(taskRoleStatements(template)).toEqual([
      {
        Action: 's3:GetObject',
        Effect: 'Allow',
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::team-models/team/m1/*']] },
      },
      {
        Action: 's3:ListBucket',
        Condition: { StringLike: { 's3:prefix': ['team/m1/*'] } },
        Effect: 'Allow',
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::team-models']] },
      },
    ]);
  });

  test('a KMS-encrypted bucket: kms:Decrypt on its key as well', () => {
    const template = templateOf((stack) => {
      const bucket = new s3.Bucket(stack, 'Bucket', { encryption: s3.BucketEncryption.KMS });
      service(stack, ModelSource.fromBucket(bucket, 'model.joblib'));
    });
    const statements = taskRoleStatements(template);
    expect(statements).toContainEqual(expect.objectContaining({
      Action: 'kms:Decrypt',
      Resource: { 'Fn::GetAtt': [expect.stringMatching(/^BucketKey/), 'Arn'] },
    }));
    expect(statements.flatMap((s) => [s.Action].flat())).toEqual(['s3:GetObject', 'kms:Decrypt']);
  });

  test('a SHA-256 is passed to the fetcher', () => {
    const sha = 'a'.repeat(64);
    const template = templateOf((stack) => {
      service(stack, ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'team-models'), 'm.joblib', { sha256: sha }));
    });
    expect(envOf(containers(template)['model-fetcher']).MODEL_SHA256).toBe(sha);
  });

  test.each([
    ['', {}, "ModelSource.fromBucket: invalid 'keyOrPrefix': must not be empty"],
    ['/model.joblib', {}, "ModelSource.fromBucket: invalid 'keyOrPrefix': must not start with '/', got '/model.joblib'"],
    ['m.joblib', { sha256: 'abc' }, "ModelSource.fromBucket: invalid 'sha256': must be 64 lowercase hex digits, got 'abc'"],
    ['team/m1/', { sha256: 'a'.repeat(64) }, "ModelSource.fromBucket: invalid 'sha256': applies to a single object, but 'team/m1/' is a prefix"],
    // IAM would read these as wildcards or a policy variable, granting more than the model.
    ['team?/', {}, "ModelSource.fromBucket: invalid 'keyOrPrefix': 'team?/' has '?', which IAM reads as a wildcard in the grant's resource ARN, so the task could read other objects"],
    ['models/*.joblib', {}, "'models/*.joblib' has '*', which IAM reads as a wildcard"],
    ['${aws:username}/model.joblib', {}, "has '$', which IAM reads as the start of a policy variable"],
    // A different object to S3 than to a file system.
    ['iris/../secret.joblib', {}, "ModelSource.fromBucket: invalid 'keyOrPrefix': 'iris/../secret.joblib' has an empty, '.' or '..' path segment"],
    ['iris/./m.joblib', {}, "has an empty, '.' or '..' path segment"],
    ['iris//m.joblib', {}, "has an empty, '.' or '..' path segment"],
    ['iris/..', {}, "has an empty, '.' or '..' path segment"],
    ['iris//', {}, "has an empty, '.' or '..' path segment"],
    ['team/m1.joblib', { manifest: { 'm1.joblib': 'a'.repeat(64) } }, "ModelSource.fromBucket: invalid 'manifest': applies to a prefix, but 'team/m1.joblib' is a single object: give its sha256 instead"],
    ['team/m1/', { manifest: { '../m1.joblib': 'a'.repeat(64) } }, "ModelSource.fromBucket: invalid 'manifest': names '../m1.joblib', which is not a relative path below the model directory"],
    ['team/m1/', { manifest: { 'm1.joblib': 'ABC' } }, "ModelSource.fromBucket: invalid 'manifest': gives 'm1.joblib' 'ABC', which is not 64 lowercase hex digits"],
    ['team/m1/', { manifest: {} }, "ModelSource.fromBucket: invalid 'manifest': must name at least one file"],
  ])('key %p with %p fails synth', (key, options, message) => {
    const stack = new Stack();
    expect(() => ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'team-models'), key, options)).toThrow(message);
  });
});

test('a prefix with a pinned manifest passes it to the fetcher', () => {
  const manifest = { 'model.joblib': 'a'.repeat(64), 'meta/labels.json': 'b'.repeat(64) };
  const template = templateOf((stack) => service(stack, ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'team-models'), 'iris/v3/', { manifest })));
  expect(JSON.parse(envOf(containers(template)['model-fetcher']).MODEL_MANIFEST as string)).toEqual(manifest);
});

describe('ModelSource.fromS3Uri', () => {
  test('a URI whose key IAM would read as a wildcard fails synth', () => {
    expect(() => ModelSource.fromS3Uri('s3://team-models/team?/')).toThrow("ModelSource.fromS3Uri: invalid 'keyOrPrefix': 'team?/' has '?'");
  });

  test('imports the bucket and grants the object; an encryption key adds kms:Decrypt', () => {
    const template = templateOf((stack) => {
      const encryptionKey = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab');
      service(stack, ModelSource.fromS3Uri('s3://team-models/iris/model.joblib', { encryptionKey }));
    });
    expect(envOf(containers(template)['model-fetcher']).MODEL_URI).toBe('s3://team-models/iris/model.joblib');
    expect(taskRoleStatements(template)).toContainEqual({
      Action: 'kms:Decrypt',
      Effect: 'Allow',
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    });
  });

  test.each(['team-models/model.joblib', 's3://team-models', 's3://team-models/', 's3://Team_Models/m.joblib', 'https://team-models.s3.amazonaws.com/m'])(
    'a malformed URI %p fails synth with what is expected',
    (uri) => {
      expect(() => ModelSource.fromS3Uri(uri)).toThrow(
        new RegExp(`^ModelSource.fromS3Uri: invalid 'uri': expected s3://bucket/key or s3://bucket/prefix/ .* got '${uri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'$`),
      );
    },
  );
});
