import { Duration, Fn } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { ModelContainerContract } from '../container-contract';

/**
 * The CloudWatch metrics of one model service, built from what is known at synth: its target
 * groups (one, or two during side-by-side rollouts, whose series are combined), its listener's
 * load balancer, and the Service dimension of the server's EMF metrics.
 */
export class ModelMetrics {
  /** A Container Insights metric of one ECS service (Average over a minute). */
  public static containerInsights(
    service: ecs.BaseService, metricName: string, label: string, options: cloudwatch.MetricOptions = {},
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'ECS/ContainerInsights',
      metricName,
      dimensionsMap: { ClusterName: service.cluster.clusterName, ServiceName: service.serviceName },
      statistic: 'Average',
      period: Duration.minutes(1),
      label,
      ...options,
    });
  }

  /** 100 × errors / requests, 0 when there were no requests. */
  public static rate(errors: cloudwatch.IMetric, requests: cloudwatch.IMetric, label: string): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { errors, requests },
      label,
      period: Duration.minutes(1),
    });
  }

  /** The load balancer's name as metric dimensions give it (app/<name>/<id>), from the listener's ARN. */
  private readonly loadBalancer: string;

  constructor(
    private readonly targetGroups: elbv2.ApplicationTargetGroup[],
    listener: elbv2.IApplicationListener,
    /** The EMF metrics' Service dimension. */
    public readonly serviceDimension: string,
  ) {
    // arn:...:listener/app/<name>/<id>/<listener id>
    const parts = Fn.split('/', listener.listenerArn, 5);
    this.loadBalancer = Fn.join('/', [Fn.select(1, parts), Fn.select(2, parts), Fn.select(3, parts)]);
  }

  /** A target-group metric summed (or, for `combine: 'MAX'`, maximised) over the target groups. */
  public targets(metricName: string, statistic: string, label: string, options: cloudwatch.MetricOptions = {}, combine: 'SUM' | 'MAX' = 'SUM'): cloudwatch.IMetric {
    const period = options.period ?? Duration.minutes(1);
    const series = this.targetGroups.map((tg) => new cloudwatch.Metric({
      namespace: 'AWS/ApplicationELB',
      metricName,
      dimensionsMap: { LoadBalancer: this.loadBalancer, TargetGroup: tg.targetGroupFullName },
      statistic,
      period,
      ...options,
    }));
    if (series.length === 1) return series[0].with({ label });
    // Ids unique to the metric and statistic: expressions nest (a rate of two sums) and share graphs.
    const stem = `${metricName}${statistic}`.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
    const ids = series.map((_, i) => `${stem}${i}`);
    // A target group without targets reports nothing: FILL makes it count as 0.
    const filled = ids.map((id) => `FILL(${id}, 0)`);
    return new cloudwatch.MathExpression({
      expression: combine === 'SUM' ? filled.join(' + ') : `MAX([${filled.join(', ')}])`,
      usingMetrics: Object.fromEntries(ids.map((id, i) => [id, series[i]])),
      label,
      period,
    });
  }

  /** A metric of the whole load balancer (a new one: on a shared one it counts other services too). */
  public loadBalancerMetric(metricName: string, statistic: string, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/ApplicationELB',
      metricName,
      dimensionsMap: { LoadBalancer: this.loadBalancer },
      statistic,
      period: Duration.minutes(1),
      ...options,
    });
  }

  /** One of the server's EMF metrics (see assets/model-server/model_server/emf.py), across versions. */
  public model(metricName: string, statistic: string, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: ModelContainerContract.METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { Service: this.serviceDimension },
      statistic,
      period: Duration.minutes(1),
      ...options,
    });
  }

  /**
   * One of the server's high-resolution per-worker load metrics (10 s) as a per-task one: its
   * Average over the workers times the workers a task runs.
   */
  public perTask(metricName: string, workersPerTask: number, label: string, options: cloudwatch.MetricOptions = {}): cloudwatch.MathExpression {
    // An id of its own per metric: graphs show several of these side by side.
    const id = metricName.charAt(0).toLowerCase() + metricName.slice(1);
    const period = options.period ?? Duration.seconds(10);
    return new cloudwatch.MathExpression({
      expression: `${id} * ${workersPerTask}`,
      usingMetrics: { [id]: this.model(metricName, 'Average', { ...options, period }) },
      label,
      period,
    });
  }

  /** An EMF metric per model version: one line per version that served, so a rollout or a rollback shows. */
  public byModelVersion(metricName: string, statistic: string, label: string): cloudwatch.MathExpression {
    const service = this.serviceDimension.replace(/"/g, '\\"');
    return new cloudwatch.MathExpression({
      expression: `SEARCH('{${ModelContainerContract.METRICS_NAMESPACE},Service,ModelVersion} MetricName="${metricName}" Service="${service}"', '${statistic}', 60)`,
      label,
      period: Duration.minutes(1),
      usingMetrics: {},
    });
  }
}
