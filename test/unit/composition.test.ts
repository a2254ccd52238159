import { App } from 'aws-cdk-lib';
import { COMPOSITIONS, platformApp, sharedGpuApp, sideBySideApp } from '../helpers/compositions';
import { synthWithNag } from '../helpers/stack';

/**
 * The constructs in a team's own stack layout: a VPC, cluster, listener and KMS bucket from a
 * platform stack, several services on one listener, Fargate and GPU side by side. Each layout
 * synthesizes (no dependency cycle, no id collision), its stacks depend one way only, and cdk-nag
 * finds nothing in what the library created.
 */
function synth(app: App) {
  const assembly = app.synth();
  const templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template]));
  const dependencies = Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.dependencies.map((d) => d.id)]));
  return { templates, dependencies };
}

function resourcesOf(template: any, type: string): Array<[string, any]> {
  return Object.entries<any>(template.Resources).filter(([, r]) => r.Type === type);
}

test.each(Object.entries(COMPOSITIONS))('%s: synthesizes, and cdk-nag finds nothing in the library\'s constructs', (_name, make) => {
  const { reports, error } = synthWithNag(make());
  const findings = reports.flatMap((r) => r.violations ?? [])
    .flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`));
  // The app's own platform resources (a bare VPC, ALB and cluster) are the app's business.
  const library = /^(Models\/(Iris|Wine)|MoreModels\/Digits|Serving\/(Iris|Resnet)|SharedRollouts\/(Iris|Wine)|Rollouts\/(Resnet|Digits)|GpuModels\/Resnet|MoreGpuModels\/Clip|Platform\/Gpus|Elastic\/(Iris|Resnet|Clip))\//;
  expect(findings.filter((f: string) => library.test(f.split(' at ')[1]))).toEqual([]);
  if (error) expect(error.message).not.toMatch(/Iris|Wine|Digits|Resnet|Clip|cycle/i);
});

describe('a platform stack used by two stacks of models', () => {
  const { templates, dependencies } = synth(platformApp());

  test('the model stacks depend on the platform, never the other way', () => {
    expect(dependencies.Models).toContain('Platform');
    expect(dependencies.MoreModels).toContain('Platform');
    expect(dependencies.Platform.filter((d) => !d.endsWith('.assets'))).toEqual([]);
    expect(JSON.stringify(templates.Platform)).not.toMatch(/Iris|Wine|Digits/);
  });

  test('each service\'s listener rule is its own, in its own stack, below its own path', () => {
    expect(resourcesOf(templates.Platform, 'AWS::ElasticLoadBalancingV2::ListenerRule')).toEqual([]);
    const rules = [...resourcesOf(templates.Models, 'AWS::ElasticLoadBalancingV2::ListenerRule'), ...resourcesOf(templates.MoreModels, 'AWS::ElasticLoadBalancingV2::ListenerRule')];
    expect(rules.map(([, r]) => [r.Properties.Priority, r.Properties.Conditions[0].PathPatternConfig.Values])).toEqual([
      [10, ['/models/iris/*']], [20, ['/models/wine/*']], [30, ['/models/digits/*']],
    ]);
    for (const [, rule] of rules) expect(JSON.stringify(rule.Properties.ListenerArn)).toMatch(/Fn::ImportValue/);
    const healthPaths = [...resourcesOf(templates.Models, 'AWS::ElasticLoadBalancingV2::TargetGroup'), ...resourcesOf(templates.MoreModels, 'AWS::ElasticLoadBalancingV2::TargetGroup')]
      .map(([, tg]) => tg.Properties.HealthCheckPath);
    expect(healthPaths).toEqual(['/models/iris/health', '/models/wine/health', '/models/digits/health']);
  });

  test('the services run on the platform\'s cluster and may decrypt with the bucket\'s key', () => {
    for (const stack of ['Models', 'MoreModels']) {
      for (const [, service] of resourcesOf(templates[stack], 'AWS::ECS::Service')) expect(JSON.stringify(service.Properties.Cluster)).toMatch(/Fn::ImportValue.*Platform:ExportsOutputRefCluster/);
      const policies = JSON.stringify(resourcesOf(templates[stack], 'AWS::IAM::Policy'));
      expect(policies).toMatch(/kms:Decrypt[^\]]*Platform:ExportsOutputFnGetAttModelsKey/);
    }
  });
});

test('Fargate and GPU side by side: one cluster, the GPU capacity associated with it, both on the listener', () => {
  const { templates } = synth(sideBySideApp());
  const t = templates.Serving;
  expect(resourcesOf(t, 'AWS::ECS::Cluster')).toHaveLength(1);
  expect(resourcesOf(t, 'AWS::ECS::ClusterCapacityProviderAssociations')).toHaveLength(1);
  expect(resourcesOf(t, 'AWS::ECS::Service').map(([, s]) => s.Properties.LaunchType ?? 'capacity provider').sort()).toEqual(['FARGATE', 'capacity provider']);
  expect(resourcesOf(t, 'AWS::ElasticLoadBalancingV2::ListenerRule')).toHaveLength(2);
});

describe('GPU capacity in the platform stack, shared by GPU services in two other stacks', () => {
  const { templates, dependencies } = synth(sharedGpuApp());

  test('the instances, their capacity provider and its association are the platform\'s, and only there', () => {
    const p = templates.Platform;
    expect(resourcesOf(p, 'AWS::AutoScaling::AutoScalingGroup')).toHaveLength(1);
    expect(resourcesOf(p, 'AWS::ECS::CapacityProvider')).toHaveLength(1);
    const [[, association]] = resourcesOf(p, 'AWS::ECS::ClusterCapacityProviderAssociations');
    expect(JSON.stringify(association.Properties.CapacityProviders)).toMatch(/GpusCapacity/);
    expect(JSON.stringify(p)).not.toMatch(/Resnet|Clip/);
    for (const stack of ['GpuModels', 'MoreGpuModels']) {
      for (const type of ['AWS::AutoScaling::AutoScalingGroup', 'AWS::ECS::CapacityProvider', 'AWS::ECS::ClusterCapacityProviderAssociations', 'AWS::IAM::InstanceProfile']) {
        expect(resourcesOf(templates[stack], type)).toEqual([]);
      }
      expect(dependencies[stack]).toContain('Platform');
    }
    expect(dependencies.Platform.filter((d) => !d.endsWith('.assets'))).toEqual([]);
  });

  test('each service places its GPU-reserving tasks with the platform\'s capacity provider, on the platform\'s cluster', () => {
    for (const stack of ['GpuModels', 'MoreGpuModels']) {
      const [[, service]] = resourcesOf(templates[stack], 'AWS::ECS::Service');
      expect(JSON.stringify(service.Properties.CapacityProviderStrategy)).toMatch(/Fn::ImportValue.*Platform:ExportsOutputRefGpusCapacity/);
      expect(JSON.stringify(service.Properties.Cluster)).toMatch(/Fn::ImportValue.*Platform:ExportsOutputRefCluster/);
      const [[, task]] = resourcesOf(templates[stack], 'AWS::ECS::TaskDefinition');
      const server = task.Properties.ContainerDefinitions.find((c: any) => c.ResourceRequirements);
      expect(server.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
      // The capacity's instance type sizes the task: a g5.xlarge's usable memory, for its one task.
      expect(server.Memory).toBe(16 * 1024 - 1536);
    }
  });
});
