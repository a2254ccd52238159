import { CfnOutput, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { checkIntRange, InvalidPropError } from './validation';

/** A listener of an existing Application Load Balancer that routes some requests to the model. */
export interface ExistingListenerOptions {
  /** The listener, e.g. from `ApplicationListener.fromLookup` or another stack. */
  readonly listener: elbv2.IApplicationListener;
  /** The listener rule's priority, 1-50000, unique on the listener. */
  readonly priority: number;
  /** Which requests reach the model, e.g. `ListenerCondition.pathPatterns(['/models/iris/*'])`. */
  readonly conditions: elbv2.ListenerCondition[];
}

export interface ModelEndpointProps {
  readonly vpc: ec2.IVpc;
  readonly containerPort: number;
  readonly healthCheckPath: string;
  readonly deregistrationDelay: Duration;
  /** @default true */
  readonly internetFacing?: boolean;
  /** @default - HTTP on port 80 */
  readonly certificate?: acm.ICertificate;
  /** @default - a new load balancer */
  readonly existingListener?: ExistingListenerOptions;
  /** @default - a new encrypted bucket */
  readonly accessLogsBucket?: s3.IBucket;
}

/**
 * The HTTP front of a model service: a target group whose health check calls the health path,
 * behind either a new Application Load Balancer or an existing listener.
 */
export class ModelEndpoint extends Construct {
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  public readonly listener: elbv2.IApplicationListener;
  /** The load balancer, when this construct created it. */
  public readonly loadBalancer?: elbv2.ApplicationLoadBalancer;
  /** The endpoint's base URL, when this construct created the load balancer. */
  public readonly url?: string;

  constructor(scope: Construct, id: string, props: ModelEndpointProps) {
    super(scope, id);

    this.targetGroup = new elbv2.ApplicationTargetGroup(this, 'TargetGroup', {
      vpc: props.vpc,
      targetType: elbv2.TargetType.IP,
      protocol: elbv2.ApplicationProtocol.HTTP,
      port: props.containerPort,
      deregistrationDelay: props.deregistrationDelay,
      healthCheck: {
        path: props.healthCheckPath,
        healthyHttpCodes: '200',
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });

    if (props.existingListener) {
      const { listener, priority, conditions } = props.existingListener;
      checkIntRange('ModelEndpoint', 'existingListener.priority', priority, 1, 50000);
      if (conditions.length === 0) {
        throw new InvalidPropError('ModelEndpoint', 'existingListener.conditions', 'needs at least one condition, e.g. a path pattern');
      }
      listener.addTargetGroups('Model', { targetGroups: [this.targetGroup], priority, conditions });
      this.listener = listener;
      return;
    }

    if (!props.accessLogsBucket && Token.isUnresolved(Stack.of(this).region)) {
      // Who may write ALB access logs depends on the region, so it must be known at synth.
      throw new Error(`${this.node.path}: a new load balancer writes access logs, which needs the stack's region: ` +
        "give the stack an env with a region (e.g. env: { region: process.env.CDK_DEFAULT_REGION }), or pass 'accessLogsBucket'");
    }
    const internetFacing = props.internetFacing ?? true;
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
    if (internetFacing) {
      Validations.of(lb).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'An internet-facing model endpoint must accept clients from any address on its listener ports; only the ALB is open, and tasks accept traffic from the ALB alone.',
      });
    } else {
      for (const p of props.certificate ? [80, 443] : [80]) {
        lb.connections.allowFrom(ec2.Peer.ipv4(props.vpc.vpcCidrBlock), ec2.Port.tcp(p), 'Clients inside the VPC');
      }
    }

    this.loadBalancer = lb;
    this.listener = listener;
    this.url = `${props.certificate ? 'https' : 'http'}://${lb.loadBalancerDnsName}`;
    new CfnOutput(this, 'EndpointUrl', { value: this.url, description: 'Base URL of the model endpoint (POST /predict)' });
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
