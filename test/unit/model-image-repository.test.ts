import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, DefaultStackSynthesizer, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as kms from 'aws-cdk-lib/aws-kms';
import { FargateModelService, ModelImageRepository, ModelSource } from '../../lib';
import { newStack, synthWithNag } from '../helpers/stack';

const ENV = { account: '123456789012', region: 'eu-west-1' };

describe('the repository', () => {
  const template = (props: Partial<ConstructorParameters<typeof ModelImageRepository>[2]> = {}, context?: Record<string, string>) => {
    const stack = new Stack(new App({ context }), 'Images', { env: ENV });
    new ModelImageRepository(stack, 'Images', { repositoryName: 'iris-model-server', ...props });
    return Template.fromStack(stack);
  };

  test('scans on push, keeps tags immutable, encrypts with KMS and is kept when the stack goes', () => {
    const t = template();
    t.hasResource('AWS::ECR::Repository', {
      Properties: {
        RepositoryName: 'iris-model-server',
        ImageScanningConfiguration: { ScanOnPush: true },
        ImageTagMutability: 'IMMUTABLE',
        EncryptionConfiguration: { EncryptionType: 'KMS' },
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  test('by default only untagged images expire: a deployed image is never expired for being pushed long ago', () => {
    const policy = JSON.parse(Object.values<any>(template().findResources('AWS::ECR::Repository'))[0].Properties.LifecyclePolicy.LifecyclePolicyText);
    expect(policy.rules).toEqual([
      expect.objectContaining({ rulePriority: 1, selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countNumber: 1, countUnit: 'days' }, action: { type: 'expire' } }),
    ]);
  });

  test('a count rule is an opt-in', () => {
    const counted = JSON.parse(Object.values<any>(template({ maxImageCount: 500 }).findResources('AWS::ECR::Repository'))[0].Properties.LifecyclePolicy.LifecyclePolicyText);
    expect(counted.rules).toEqual([
      expect.objectContaining({ rulePriority: 1, selection: expect.objectContaining({ tagStatus: 'untagged' }) }),
      expect.objectContaining({ rulePriority: 2, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 500 }, action: { type: 'expire' } }),
    ]);
  });

  test('only the CDK image-publishing role may push, and it may read scans and tag again', () => {
    const statement = {
      Sid: 'CdkImagePublishing',
      Effect: 'Allow',
      Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:role/cdk-hnb659fds-image-publishing-role-123456789012-eu-west-1']] } },
      Action: Match.arrayEquals([
        'ecr:BatchCheckLayerAvailability', 'ecr:InitiateLayerUpload', 'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload',
        'ecr:PutImage', 'ecr:DescribeImages', 'ecr:DescribeRepositories', 'ecr:BatchGetImage', 'ecr:DescribeImageScanFindings',
      ]),
    };
    template().hasResourceProperties('AWS::ECR::Repository', { RepositoryPolicyText: { Statement: [statement] } });
    // Another bootstrap qualifier, from context as `cdk bootstrap --qualifier` users set it.
    const qualified = template({}, { '@aws-cdk/core:bootstrapQualifier': 'team42' });
    qualified.hasResourceProperties('AWS::ECR::Repository', {
      RepositoryPolicyText: { Statement: [Match.objectLike({ Principal: { AWS: { 'Fn::Join': ['', Match.arrayWith([':iam::123456789012:role/cdk-team42-image-publishing-role-123456789012-eu-west-1'])] } } })] },
    });
  });

  test('a customer-managed key, a removal policy', () => {
    const stack = new Stack(new App(), 'Images', { env: ENV });
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    new ModelImageRepository(stack, 'Images', { repositoryName: 'team/iris', encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
    Template.fromStack(stack).hasResource('AWS::ECR::Repository', {
      Properties: { EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] } } },
      DeletionPolicy: 'Delete',
    });
  });

  test('is clean under cdk-nag AwsSolutions', () => {
    const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-nag-')) });
    new ModelImageRepository(new Stack(app, 'Images', { env: ENV }), 'Images', { repositoryName: 'iris-model-server' });
    const { reports, error } = synthWithNag(app);
    if (error) throw error;
    expect(reports).toEqual([]);
  });

  test.each([
    [{ repositoryName: 'Iris' }, "invalid 'repositoryName': must be a literal ECR repository name"],
    [{ repositoryName: 'iris--/x' }, "invalid 'repositoryName'"],
    [{ repositoryName: 'iris', maxImageCount: 0 }, "invalid 'maxImageCount': must be an integer from 1 to 10000, got 0"],
    [{ repositoryName: 'iris', encryption: ecr.RepositoryEncryption.AES_256, encryptionKey: 'key' }, "invalid 'encryptionKey': needs encryption RepositoryEncryption.KMS, got AES256"],
  ])('bad props fail at synth with what to change: %j', (...[props, message]) => {
    const stack = newStack();
    const p: any = { ...props };
    if (p.encryptionKey) p.encryptionKey = new kms.Key(stack, 'Key');
    expect(() => new ModelImageRepository(stack, 'Images', p)).toThrow(message);
  });
});

describe('the serving stack, with the repository\'s synthesizer', () => {
  const outdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'synth-'));

  test('its image assets go to the repository, tagged by content hash, and the tasks name that immutable tag', () => {
    const app = new App({ outdir: outdir() });
    const images = new Stack(app, 'Images', { env: ENV });
    const repository = new ModelImageRepository(images, 'Images', { repositoryName: 'iris-model-server' });
    const serving = new Stack(app, 'Serving', { env: ENV, synthesizer: repository.stackSynthesizer() });
    serving.addStackDependency(images);
    new FargateModelService(serving, 'Model', { model: ModelSource.fromS3Uri('s3://models/iris.joblib') });
    const assembly = app.synth();

    const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'Serving.assets.json'), 'utf8'));
    const destinations = Object.values<any>(manifest.dockerImages).map((image) => Object.values<any>(image.destinations)[0]);
    expect(destinations).toHaveLength(2); // the server and the model fetcher
    for (const d of destinations) {
      expect(d).toMatchObject({ repositoryName: 'iris-model-server', imageTag: expect.stringMatching(/^[0-9a-f]{64}$/) });
    }

    const template = Template.fromStack(serving);
    const task = Object.values<any>(template.findResources('AWS::ECS::TaskDefinition'))[0];
    for (const container of task.Properties.ContainerDefinitions) {
      const image = JSON.stringify(container.Image);
      expect(image).toContain('123456789012.dkr.ecr.eu-west-1.${AWS::URLSuffix}/iris-model-server:');
      expect(destinations.some((d) => image.includes(`iris-model-server:${d.imageTag}`))).toBe(true);
    }
    // The execution role pulls from that repository only.
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
          Resource: { 'Fn::Join': ['', Match.arrayWith([':ecr:eu-west-1:123456789012:repository/iris-model-server'])] },
        })]),
      },
    });
    expect(assembly.getStackByName('Serving').dependencies.map((d) => d.id)).toContain('Images');
  });

  test('the synthesizer uses the bootstrap qualifier the repository admits', () => {
    const stack = newStack();
    const repository = new ModelImageRepository(stack, 'Images', { repositoryName: 'iris', bootstrapQualifier: 'team42' });
    const serving = new Stack(stack.node.root as App, 'Serving', { env: ENV, synthesizer: repository.stackSynthesizer() });
    expect((serving.synthesizer as DefaultStackSynthesizer).deployRoleArn).toContain(':role/cdk-team42-deploy-role-');
    expect(() => repository.stackSynthesizer({ qualifier: 'other' }))
      .toThrow("invalid 'qualifier': must be the repository's bootstrapQualifier 'team42', got 'other'; set bootstrapQualifier on the repository instead");
  });

  test('the synthesizer names the repository itself', () => {
    expect(() => ModelImageRepository.synthesizerFor('iris', { imageAssetsRepositoryName: 'other' }))
      .toThrow("ModelImageRepository.synthesizerFor: invalid 'imageAssetsRepositoryName': is set by this method to 'iris'; leave it out, got 'other'");
  });
});
