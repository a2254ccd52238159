import * as fs from 'node:fs';
import * as path from 'node:path';
import { REFERENCE_CONFIGURATIONS, REFERENCE_TEMPLATES_DIR, referenceTemplate } from '../helpers/reference-templates';

/**
 * Upgrading a deployed stack must replace nothing: every resource keeps its logical ID, type and
 * settings. Each reference configuration is synthesized and compared with its template as the
 * library synthesized it before (test/fixtures/templates). The only differences allowed are
 * listed here, each with the reason it is harmless.
 */
const HARMLESS: Array<{ what: string; why: string; normalize: (template: any) => any }> = [
  {
    what: 'asset hashes',
    why: 'an asset hash (S3 key of a Lambda bundle or a model file, the tag of an image) follows the bytes of the asset: ' +
      'a rebuilt fetcher or function changes it, and CloudFormation updates the function or the task definition in place',
    normalize: (template) => JSON.parse(JSON.stringify(template).replace(/[0-9a-f]{64}(\.zip|\.jsonl)?/g, '<asset hash>')),
  },
  {
    what: "the start-failure metric filter's pattern",
    why: 'it matches a JSON field only the fetcher and the server write, instead of words a client could put in the access log; ' +
      "CloudFormation updates a metric filter's pattern in place",
    normalize: (template) => {
      for (const resource of Object.values<any>(template.Resources)) {
        if (resource.Type === 'AWS::Logs::MetricFilter') resource.Properties.FilterPattern = '<start-failure pattern>';
      }
      return template;
    },
  },
  {
    what: 'the trust policy of the roles ECS assumes',
    why: 'the load-balancer role and the golden-request hook\'s invoke role admit ECS only on behalf of this account\'s ECS ' +
      'resources (aws:SourceAccount, aws:SourceArn); CloudFormation updates a role\'s trust policy in place',
    normalize: (template) => {
      for (const resource of Object.values<any>(template.Resources)) {
        if (resource.Type !== 'AWS::IAM::Role') continue;
        for (const statement of resource.Properties.AssumeRolePolicyDocument.Statement) {
          if (statement.Principal?.Service === 'ecs.amazonaws.com') delete statement.Condition;
        }
      }
      return template;
    },
  },
  {
    what: 'a side-by-side rollout\'s test-header secret, and the header value the test rule and the golden-request hook take from it',
    why: 'the secret is a new resource (nothing is replaced), and the rule\'s header condition and the function\'s environment ' +
      'take its dynamic reference instead of the constant "1"; CloudFormation updates both in place',
    normalize: (template) => {
      for (const [id, resource] of Object.entries<any>(template.Resources)) {
        if (resource.Type === 'AWS::SecretsManager::Secret' && /EndpointTestHeaderValue/.test(id)) delete template.Resources[id];
        if (resource.Type === 'AWS::ElasticLoadBalancingV2::ListenerRule') {
          for (const c of resource.Properties.Conditions) if (c.Field === 'http-header') c.HttpHeaderConfig.Values = ['<test header value>'];
        }
        if (resource.Type === 'AWS::Lambda::Function') delete resource.Properties.Environment?.Variables?.TEST_HEADER_VALUE;
      }
      return template;
    },
  },
  {
    what: 'the sample model\'s version',
    why: 'MODEL_VERSION is the model file\'s checksum, and the sample model was pickled again by the pinned scikit-learn: ' +
      'a new model version is what a deployment rolls out, in a new task definition revision',
    normalize: (template) => {
      for (const resource of Object.values<any>(template.Resources)) {
        for (const c of resource.Type === 'AWS::ECS::TaskDefinition' ? resource.Properties.ContainerDefinitions : []) {
          for (const e of c.Environment ?? []) if (e.Name === 'MODEL_VERSION') e.Value = '<model version>';
        }
      }
      return template;
    },
  },
  {
    what: 'the 5xx-rate alarm\'s expression',
    why: 'it leaves out the 503s a task answers on purpose when it sheds load (the server\'s RequestsShed metric), which must not ' +
      'roll a deployment back; CloudFormation updates an alarm\'s metrics in place',
    normalize: (template) => {
      for (const [id, resource] of Object.entries<any>(template.Resources)) {
        if (resource.Type !== 'AWS::CloudWatch::Alarm' || !/TargetErrorRate/.test(id)) continue;
        resource.Properties.Metrics = resource.Properties.Metrics.filter((m: any) => m.Id !== 'shed');
        for (const m of resource.Properties.Metrics) {
          if (m.Id === 'expr_1') m.Expression = '<5xx rate>';
          if (m.Id === 'expr_1') delete m.Label;
        }
      }
      return template;
    },
  },
  {
    what: 'the dashboard\'s body',
    why: 'a dashboard is display only, and its new graph shows the tasks\' load (in-flight and queued requests, requests shed); ' +
      'CloudFormation updates a dashboard\'s body in place',
    normalize: (template) => {
      for (const resource of Object.values<any>(template.Resources)) {
        if (resource.Type === 'AWS::CloudWatch::Dashboard') resource.Properties.DashboardBody = '<dashboard>';
      }
      return template;
    },
  },
];

/** Resources a newer version adds to a configuration, each exactly once: an upgrade creates them, and replaces nothing. */
const ADDED_EVERYWHERE: RegExp[] = [
  // Scale-out on the server's 10-second ConcurrencyUtilization: a step policy and its alarm.
  /^ModelServiceTaskCountConcurrency[0-9A-F]{8}$/,
  /^ModelServiceTaskCountConcurrencyAlarm[0-9A-F]{8}$/,
];
const ADDED: Record<string, RegExp[]> = {
  'fargate-canary': [/^ModelEndpointTestHeaderValue[0-9A-F]{8}$/],
  // The idle-GPU alarm.
  'gpu': [/^ModelAlarmsGpuIdle[0-9A-F]{8}$/],
  'gpu-spot': [/^ModelAlarmsGpuIdle[0-9A-F]{8}$/],
};

function normalized(template: any, added: RegExp[]): unknown {
  template = JSON.parse(JSON.stringify(template));
  for (const id of Object.keys(template.Resources)) if (added.some((p) => p.test(id))) delete template.Resources[id];
  return HARMLESS.reduce((t, { normalize }) => normalize(t), JSON.parse(JSON.stringify(template)));
}

describe.each(Object.keys(REFERENCE_CONFIGURATIONS))('the %s configuration', (name) => {
  const recorded = JSON.parse(fs.readFileSync(path.join(REFERENCE_TEMPLATES_DIR, `${name}.json`), 'utf8'));
  let current: any;
  beforeAll(() => {
    current = referenceTemplate(name);
  }, 120_000);

  test('keeps every resource, by logical ID and type, and adds only the listed ones', () => {
    const types = (t: any) => Object.fromEntries(Object.entries(t.Resources).map(([id, r]: [string, any]) => [id, r.Type]));
    const added = [...ADDED_EVERYWHERE, ...ADDED[name] ?? []];
    const isAdded = (id: string) => added.some((pattern) => pattern.test(id));
    const kept = Object.fromEntries(Object.entries(types(current)).filter(([id]) => !isAdded(id) || id in recorded.Resources));
    expect(kept).toEqual(types(recorded));
    for (const pattern of added) expect(Object.keys(current.Resources).filter((id) => pattern.test(id))).toHaveLength(1);
  });

  test('synthesizes the template it did before, but for the listed harmless differences', () => {
    const added = [...ADDED_EVERYWHERE, ...ADDED[name] ?? []];
    expect(normalized(current, added)).toEqual(normalized(recorded, added));
  });
});
