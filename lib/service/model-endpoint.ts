import { CfnOutput, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { checkIntRange, InvalidPropError, PropOwner } from '../validation';

/** A listener of an existing Application Load Balancer that routes some requests to the model. */
export interface ExistingListenerOptions {
  /** The listener, e.g. from `ApplicationListener.fromLookup` or another stack. */
  readonly listener: elbv2.IApplicationListener;
  /** The listener rule's priority, 1-50000, unique on the listener. */
  readonly priority: number;
  /**
   * The path the service answers below, e.g. `/models/iris`: the rule forwards `/models/iris/*`,
   * the server answers `/models/iris/predict` and `/models/iris/health`, and the target group's
   * health check calls the latter.
   * @default - no path condition: give `conditions` instead (a host header, say), and the server answers at `/predict`
   */
  readonly pathPrefix?: string;
  /**
   * More conditions a request must meet, such as `ListenerCondition.hostHeaders([...])`. A
   * path-pattern condition is refused: use `pathPrefix`, so that the server answers below it.
   * @default - none: `pathPrefix` alone selects the requests
   */
  readonly conditions?: elbv2.ListenerCondition[];
  /**
   * The priority of the test rule a side-by-side rollout (`Rollout.canary()`, `linear()`,
   * `blueGreen()`) adds: it must come before `priority` (a lower number), as its requests also
   * match the production rule. It sends requests from inside the VPC that carry the
   * `x-model-serving-test: 1` header to the new tasks while they are checked.
   * @default - with a side-by-side rollout, `priority - 1` unless another service of this app
   * has it on this listener (synth then asks for one); none with a rolling rollout
   */
  readonly testPriority?: number;
}

/** A URL path of one or more segments, without a trailing slash or a wildcard. */
const PATH_PREFIX = /^(\/[A-Za-z0-9._~-]+)+$/;

export interface ModelEndpointProps {
  readonly vpc: ec2.IVpc;
  readonly containerPort: number;
  /** The server's health route, below the path prefix. */
  readonly healthCheckPath: string;
  readonly deregistrationDelay: Duration;
  readonly internetFacing: boolean;
  /** @default - HTTP on port 80 */
  readonly certificate?: acm.ICertificate;
  /** @default - a new load balancer */
  readonly existingListener?: ExistingListenerOptions;
  /** @default - a new encrypted bucket */
  readonly accessLogsBucket?: s3.IBucket;
  /** The name clients use, with an alias record in `hostedZone`. @default - the load balancer's DNS name */
  readonly domainName?: string;
  /** @default - none */
  readonly hostedZone?: route53.IHostedZone;
  /**
   * Whether a rollout runs new tasks beside the old ones: then there is a second target group,
   * a production rule that weighs the two and a test rule that reaches the new tasks only.
   * @default false
   */
  readonly sideBySide?: boolean;
}

/** The header that, with the service's secret value, routes a request from inside the VPC to the new tasks during a side-by-side rollout. */
export const TEST_HEADER = 'x-model-serving-test';
/** A new load balancer's rules, when a side-by-side rollout needs them: the test rule comes first. */
const NEW_LISTENER_PRIORITIES = { test: 5, production: 10 };

/**
 * The HTTP front of a model service: a target group whose health check calls the health path,
 * behind either a new Application Load Balancer or an existing listener.
 */
export class ModelEndpoint extends Construct {
  /** Checks an existing listener's options at the top of the service's constructor. */
  public static validateExistingListener(where: PropOwner, options: ExistingListenerOptions, sideBySide: boolean): void {
    checkIntRange(where, 'existingListener.priority', options.priority, 1, 50000);
    checkIntRange(where, 'existingListener.testPriority', options.testPriority, 1, 50000);
    if (!sideBySide && options.testPriority !== undefined) {
      throw new InvalidPropError(where, 'existingListener.testPriority', 'applies only to a side-by-side rollout (Rollout.canary(), linear() or blueGreen()); drop it');
    }
    if (options.testPriority !== undefined && !Token.isUnresolved(options.priority) && options.testPriority >= options.priority) {
      throw new InvalidPropError(where, 'existingListener.testPriority',
        `(${options.testPriority}) must be lower than priority (${options.priority}): the listener evaluates lower numbers first, and the test rule's requests also match the production rule`);
    }
    const { pathPrefix, conditions = [] } = options;
    if (pathPrefix !== undefined && !Token.isUnresolved(pathPrefix) && !PATH_PREFIX.test(pathPrefix)) {
      throw new InvalidPropError(where, 'existingListener.pathPrefix',
        `must be a URL path like '/models/iris' (letters, digits, '.', '_', '~' and '-' between slashes; no trailing slash or wildcard), got '${pathPrefix}'`);
    }
    if (conditions.some((c) => c.renderRawCondition().field === 'path-pattern')) {
      throw new InvalidPropError(where, 'existingListener.conditions',
        "has a path-pattern condition, but the server would not answer below that path: drop it and set pathPrefix (e.g. pathPrefix: '/models/iris' for '/models/iris/*')");
    }
    if (pathPrefix === undefined && conditions.length === 0) {
      throw new InvalidPropError(where, 'existingListener', "needs a pathPrefix (e.g. '/models/iris') or at least one condition (e.g. a host header)");
    }
  }

  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** The second target group, for a side-by-side rollout's new tasks. */
  public readonly alternateTargetGroup?: elbv2.ApplicationTargetGroup;
  /** The rule ECS shifts production traffic on, for a side-by-side rollout. */
  public readonly productionRule?: elbv2.ApplicationListenerRule;
  /** The rule that reaches the new tasks only during a side-by-side rollout. */
  public readonly testRule?: elbv2.ApplicationListenerRule;
  /**
   * The value the test rule wants in the test header: a dynamic reference to a random secret of
   * this service, which CloudFormation resolves into the rule and into the golden-request hook.
   */
  public readonly testHeaderValue?: string;
  public readonly listener: elbv2.IApplicationListener;
  /** The load balancer, when this construct created it. */
  public readonly loadBalancer?: elbv2.ApplicationLoadBalancer;
  /** The endpoint's base URL, when this construct created the load balancer. */
  public readonly url?: string;
  /** The path every server route is below ('' for none). */
  public readonly pathPrefix: string;

  constructor(scope: Construct, id: string, props: ModelEndpointProps) {
    super(scope, id);
    this.pathPrefix = props.existingListener?.pathPrefix ?? '';

    this.targetGroup = this.newTargetGroup('TargetGroup', props);
    if (props.sideBySide) {
      this.alternateTargetGroup = this.newTargetGroup('AlternateTargetGroup', props);
      this.testHeaderValue = this.newTestHeaderValue();
    }

    if (props.existingListener) {
      const { listener, priority, pathPrefix, conditions = [] } = props.existingListener;
      // The rule lives here, in the service's own scope and stack: its id cannot collide with
      // another service's on the same listener, and a listener from another stack (a platform
      // stack) is only referenced, never given a resource that refers back to this stack.
      const ruleConditions = [...(pathPrefix ? [elbv2.ListenerCondition.pathPatterns([`${pathPrefix}/*`])] : []), ...conditions];
      if (props.sideBySide) {
        [this.productionRule, this.testRule] = this.sideBySideRules(listener, ruleConditions, props,
          { production: priority, test: props.existingListener.testPriority! });
      } else {
        new elbv2.ApplicationListenerRule(this, 'ListenerRule', { listener, priority, conditions: ruleConditions, targetGroups: [this.targetGroup] });
      }
      this.listener = listener;
      return;
    }

    if (!props.accessLogsBucket && Token.isUnresolved(Stack.of(this).region)) {
      // Who may write ALB access logs depends on the region, so it must be known at synth.
      throw new Error(`${this.node.path}: a new load balancer writes access logs, which needs the stack's region: ` +
        "give the stack an env with a region (e.g. env: { region: process.env.CDK_DEFAULT_REGION }), or pass 'accessLogsBucket'");
    }
    const internetFacing = props.internetFacing;
    const lb = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing,
      dropInvalidHeaderFields: true,
      idleTimeout: Duration.seconds(60),
    });
    lb.logAccessLogs(props.accessLogsBucket ?? this.accessLogsBucket(), 'alb');

    const port = props.certificate ? 443 : 80;
    // Internet-facing: open to the world, which is its purpose. Internal: the VPC only.
    const open = internetFacing;
    const listener = lb.addListener('Listener', {
      port,
      open,
      ...(props.certificate
        ? { protocol: elbv2.ApplicationProtocol.HTTPS, certificates: [props.certificate], sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS }
        : { protocol: elbv2.ApplicationProtocol.HTTP }),
      defaultTargetGroups: [this.targetGroup],
    });
    if (props.certificate) {
      lb.addRedirect({ sourcePort: 80, targetPort: 443, open });
    }
    if (props.sideBySide) {
      // ECS shifts traffic on a rule, never on a listener's default action: every request goes to
      // the production rule ('/*'), the default action (a forward, as ECS wants every action to be)
      // is never reached.
      [this.productionRule, this.testRule] = this.sideBySideRules(listener, [elbv2.ListenerCondition.pathPatterns(['/*'])], props,
        NEW_LISTENER_PRIORITIES);
    }
    if (internetFacing) {
      Validations.of(lb).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'An internet-facing model endpoint must accept clients from any address on its listener ports; only the ALB is open, and tasks accept traffic from the ALB alone.',
      });
    } else {
      for (const p of props.certificate ? [80, 443] : [80]) {
        lb.connections.allowFrom(ec2.Peer.ipv4(props.vpc.vpcCidrBlock), ec2.Port.tcp(p), 'Clients inside the VPC');
      }
      if (Token.isUnresolved(props.vpc.vpcCidrBlock)) {
        Validations.of(lb).acknowledge({
          id: 'AwsSolutions-EC23',
          reason: 'The internal load balancer\'s only ingress is its VPC\'s own CIDR block, which cdk-nag cannot read because it is a CloudFormation reference; nothing outside the VPC may connect.',
        });
      }
    }

    this.loadBalancer = lb;
    this.listener = listener;
    if (props.domainName && props.hostedZone) {
      new route53.ARecord(this, 'AliasRecord', {
        zone: props.hostedZone,
        recordName: props.domainName,
        target: route53.RecordTarget.fromAlias(new route53targets.LoadBalancerTarget(lb)),
      });
    }
    this.url = `${props.certificate ? 'https' : 'http'}://${props.domainName ?? lb.loadBalancerDnsName}`;
    new CfnOutput(this, 'EndpointUrl', { value: this.url, description: 'Base URL of the model endpoint (POST /predict)' });
  }

  private newTargetGroup(id: string, props: ModelEndpointProps): elbv2.ApplicationTargetGroup {
    return new elbv2.ApplicationTargetGroup(this, id, {
      vpc: props.vpc,
      targetType: elbv2.TargetType.IP,
      protocol: elbv2.ApplicationProtocol.HTTP,
      port: props.containerPort,
      deregistrationDelay: props.deregistrationDelay,
      healthCheck: {
        path: this.pathPrefix + props.healthCheckPath,
        healthyHttpCodes: '200',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });
  }

  /**
   * The two rules of a side-by-side rollout. Both forward to the two target groups by weight, and
   * ECS moves the weights as a deployment goes. Nothing in them depends on the model, the image or
   * the task definition, so a later stack update leaves them as they are and never resets weights
   * ECS has moved (aws/aws-cdk#36649).
   */
  private sideBySideRules(listener: elbv2.IApplicationListener, conditions: elbv2.ListenerCondition[],
    props: ModelEndpointProps, priorities: { production: number; test: number }): [elbv2.ApplicationListenerRule, elbv2.ApplicationListenerRule] {
    const weighted = () => elbv2.ListenerAction.weightedForward([
      { targetGroup: this.targetGroup, weight: 100 },
      { targetGroup: this.alternateTargetGroup!, weight: 0 },
    ]);
    const production = new elbv2.ApplicationListenerRule(this, 'ProductionRule', {
      listener, priority: priorities.production, conditions, action: weighted(),
    });
    const test = new elbv2.ApplicationListenerRule(this, 'TestRule', {
      listener,
      priority: priorities.test,
      conditions: [
        ...conditions,
        elbv2.ListenerCondition.httpHeader(TEST_HEADER, [this.testHeaderValue!]),
        elbv2.ListenerCondition.sourceIps([props.vpc.vpcCidrBlock]),
      ],
      action: weighted(),
    });
    return [production, test];
  }

  /**
   * The test header's value. A constant would let any client behind an in-VPC proxy (a CloudFront
   * VPC origin, an API Gateway VPC link, an NLB in front of the ALB) reach the unvalidated new
   * tasks by adding the header; a random value that only the rule and the golden-request hook are
   * given does not. It stays the same from one deployment to the next, so the rule never changes
   * under a rollout (see sideBySideRules).
   */
  private newTestHeaderValue(): string {
    const secret = new secretsmanager.Secret(this, 'TestHeaderValue', {
      description: `The ${TEST_HEADER} header value that reaches a model service's new tasks during a side-by-side rollout`,
      generateSecretString: { passwordLength: 40, excludePunctuation: true, includeSpace: false },
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'A random routing token, not a credential: CloudFormation resolves it into the test listener rule and the golden-request hook at deploy time, ' +
        'so a rotation would take effect only at the next stack update of both; no client ever holds it.',
    });
    // Only the dynamic reference is in the template; CloudFormation resolves it when it deploys.
    return secret.secretValue.unsafeUnwrap();
  }

  private accessLogsBucket(): s3.Bucket {
    const bucket = new s3.Bucket(this, 'AccessLogs', {
      // ALB access logs support only SSE-S3.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This bucket holds the load balancer\'s access logs; logging access to the log bucket itself would only log the log writes.',
    });
    return bucket;
  }
}
