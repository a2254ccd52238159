import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** What one service's dashboard shows. */
export interface ModelDashboardProps {
  readonly requests: cloudwatch.IMetric;
  readonly targetErrors: cloudwatch.IMetric;
  readonly errorRate: cloudwatch.IMetric;
  readonly latencyP50: cloudwatch.IMetric;
  readonly latencyP99: cloudwatch.IMetric;
  readonly runningTasks: cloudwatch.IMetric;
  readonly desiredTasks: cloudwatch.IMetric;
  readonly cpu: cloudwatch.IMetric;
  readonly memory: cloudwatch.IMetric;
  readonly inFlight: cloudwatch.IMetric;
  readonly queued: cloudwatch.IMetric;
  readonly shed: cloudwatch.IMetric;
  /** The cold start's stages and the time to ready (seconds, the slowest task in the period). */
  readonly coldStart: cloudwatch.IMetric[];
  readonly modelLatencyP50: cloudwatch.IMetric;
  readonly modelLatencyP99: cloudwatch.IMetric;
  readonly rowsPerBatch: cloudwatch.IMetric;
  readonly rowsPerBatchMax: cloudwatch.IMetric;
  readonly requestsRejected: cloudwatch.IMetric;
  readonly requestsByVersion: cloudwatch.IMetric;
  readonly logGroup: logs.ILogGroup;
  readonly alarms: cloudwatch.IAlarm[];
  /** @default - no GPU row */
  readonly gpuUtilization?: cloudwatch.IMetric;
  /** @default - no GPU row */
  readonly gpuMemoryUsed?: cloudwatch.IMetric;
}

/**
 * One CloudWatch dashboard per model service: traffic, latency, errors, tasks, CPU and memory
 * (and GPU), the model's own latency and batch sizes, and which model version serves.
 */
export class ModelDashboard extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: ModelDashboardProps) {
    super(scope, id);
    const graph = (title: string, left: cloudwatch.IMetric[], right: cloudwatch.IMetric[] = [], leftLabel?: string) =>
      new cloudwatch.GraphWidget({ title, left, right, width: 8, height: 6, leftYAxis: { min: 0, label: leftLabel, showUnits: false } });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard');
    this.dashboard.addWidgets(
      graph('Requests and 5xx (per minute)', [props.requests], [props.targetErrors]),
      graph('Latency (seconds)', [props.latencyP50, props.latencyP99]),
      graph('5xx rate (%)', [props.errorRate]),
    );
    this.dashboard.addWidgets(
      graph('Tasks', [props.runningTasks, props.desiredTasks]),
      graph('CPU and memory (%)', [props.cpu, props.memory]),
      graph('Load per task (10 s) and requests shed', [props.inFlight, props.queued], [props.shed]),
      ...(props.gpuUtilization && props.gpuMemoryUsed
        ? [graph('GPU utilization and memory in use (%)', [props.gpuUtilization, props.gpuMemoryUsed])]
        : []),
    );
    this.dashboard.addWidgets(
      graph('Time in the model (ms)', [props.modelLatencyP50, props.modelLatencyP99]),
      graph('Rows per model call', [props.rowsPerBatch, props.rowsPerBatchMax], [props.requestsRejected]),
      graph('Requests by model version', [props.requestsByVersion]),
    );
    this.dashboard.addWidgets(
      graph('Cold start (s, the slowest task): stages and time to ready', props.coldStart),
    );
    this.dashboard.addWidgets(
      new cloudwatch.LogQueryWidget({
        title: 'Model versions serving (access log)',
        logGroupNames: [props.logGroup.logGroupName],
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        queryLines: [
          'filter ispresent(model_version)',
          'stats count(*) as requests, max(@timestamp) as last_seen by model_version',
          'sort last_seen desc',
        ],
        width: 12,
        height: 6,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: props.alarms, width: 12, height: 6 }),
    );
  }
}
