import { Duration, Stack, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { healthPathProblem, ModelContainerContract, OWNED_SERVER_ENV, SERVER_RULES } from '../container-contract';
import { ServingImageConfig } from '../image/serving-image';
import { modelFilesProblem } from '../model/model-formats';
import { ModelSourceConfig } from '../model/model-source';
import { validateAlarmOptions } from '../operations/model-alarms';
import { Rollout } from '../rollout/rollout';
import { checkDuration, checkIntRange, InvalidPropError } from '../validation';
import { ModelEndpoint } from './model-endpoint';
import { ModelServiceBaseProps, ModelServiceSchedule, ServiceSettings } from './service-props';
import { StartupBudget } from './startup-budget';

/** A model version: printable ASCII without spaces, as a metric dimension and a header allow. */
const MODEL_VERSION = /^[\x21-\x7e]{1,128}$/;

/** What the compute variant adds to the checks every service gets. */
export interface ComputeLimits {
  /** The longest stopTimeout the compute allows (ECS: 120 s on Fargate, 600 s on EC2). */
  readonly maxStopTimeout: Duration;
}

/**
 * Checks the props every model service has, at the top of its constructor: each failure names
 * the construct's path, the prop and what is allowed.
 */
export function validateServiceProps(
  scope: IConstruct, props: ModelServiceBaseProps, s: ServiceSettings, rollout: Rollout, limits: ComputeLimits,
): void {
  checkIntRange(scope, 'containerPort', s.containerPort, 1, 65535);
  if (s.containerPort === ModelContainerContract.METRICS_PORT) {
    throw new InvalidPropError(scope, 'containerPort',
      `must not be ${ModelContainerContract.METRICS_PORT}, the server's metrics port (never a load balancer target)`);
  }
  const healthPath = Token.isUnresolved(s.healthCheckPath) ? undefined : healthPathProblem(s.healthCheckPath);
  if (healthPath) throw new InvalidPropError(scope, 'healthCheckPath', healthPath);
  for (const name of Object.keys(props.environment ?? {})) {
    if (name in OWNED_SERVER_ENV) {
      throw new InvalidPropError(scope, `environment.${name}`, `is set by the construct, and would override the server's contract: ${OWNED_SERVER_ENV[name]}`);
    }
  }
  checkDuration(scope, 'startupTimeout', s.startupTimeout, StartupBudget.MIN_STARTUP_TIMEOUT, Duration.hours(2));
  checkDuration(scope, 'stopTimeout', s.stopTimeout, Duration.seconds(2), limits.maxStopTimeout);
  checkDuration(scope, 'deregistrationDelay', s.deregistrationDelay, Duration.seconds(0), Duration.seconds(3600));
  checkIntRange(scope, 'minCapacity', s.minCapacity, 0, 1000);
  checkIntRange(scope, 'maxCapacity', s.maxCapacity, 1, 1000);
  if (s.minCapacity > s.maxCapacity) {
    throw new InvalidPropError(scope, 'minCapacity', `(${s.minCapacity}) must not exceed maxCapacity (${s.maxCapacity})`);
  }
  checkIntRange(scope, 'targetRequestsPerTaskPerMinute', s.targetRequestsPerTaskPerMinute, 1, 1_000_000);
  checkIntRange(scope, 'targetCpuUtilization', s.targetCpuUtilization, 10, 95);
  checkIntRange(scope, 'scaleOutAtConcurrencyPercent', s.scaleOutAtConcurrencyPercent, 10, 100);
  validateSchedules(scope, props.schedules ?? []);
  const toZero = scalesToZero(s, props.schedules);
  if (props.scaleToZeroAfter !== undefined && !toZero) {
    throw new InvalidPropError(scope, 'scaleToZeroAfter', 'applies to a service that may scale to zero: set minCapacity (or a schedule\'s) to 0, or drop scaleToZeroAfter');
  }
  checkDuration(scope, 'scaleToZeroAfter', s.scaleToZeroAfter, Duration.minutes(5), Duration.days(1));
  if (!Token.isUnresolved(s.scaleToZeroAfter.toSeconds()) && s.scaleToZeroAfter.toSeconds() % 60 !== 0) {
    throw new InvalidPropError(scope, 'scaleToZeroAfter', `must be whole minutes (the idle alarm counts one-minute periods), got ${s.scaleToZeroAfter.toHumanString()}`);
  }
  if (toZero && rollout.sideBySide) {
    throw new InvalidPropError(scope, props.minCapacity === 0 ? 'minCapacity' : 'schedules',
      'may reach 0 tasks, which works with Rollout.rolling() only: a canary, linear or blue/green rollout tests and shifts traffic ' +
      'to new tasks beside running ones, and a service at zero has none; keep minCapacity (and every schedule\'s) at 1 or more, or use Rollout.rolling()');
  }

  if (props.existingListener) ModelEndpoint.validateExistingListener(scope, props.existingListener, rollout.sideBySide);
  if (props.goldenRequests && !rollout.sideBySide) {
    throw new InvalidPropError(scope, 'goldenRequests',
      'are checked against the new tasks before traffic moves to them, which only a side-by-side rollout does: ' +
      'set rollout to Rollout.canary(), Rollout.linear() or Rollout.blueGreen()');
  }
  if (props.modelVersion !== undefined && !Token.isUnresolved(props.modelVersion) && !MODEL_VERSION.test(props.modelVersion)) {
    throw new InvalidPropError(scope, 'modelVersion', `must be 1-128 printable ASCII characters without spaces, got '${props.modelVersion}'`);
  }
  validateAlarmOptions(scope, props.alarms ?? {});

  const loadBalancerProps = props.certificate || props.accessLogsBucket || props.internetFacing !== undefined || props.allowPlainHttp !== undefined;
  if (props.existingListener && loadBalancerProps) {
    throw new InvalidPropError(scope, 'existingListener',
      'configures the load balancer elsewhere; drop certificate, accessLogsBucket, internetFacing and allowPlainHttp, or drop existingListener');
  }
  if (props.allowPlainHttp && props.certificate) {
    throw new InvalidPropError(scope, 'allowPlainHttp', 'applies only without a certificate; with one the load balancer serves HTTPS and redirects HTTP to it');
  }
  if (props.internetFacing === true && !props.certificate && !props.allowPlainHttp) {
    throw new InvalidPropError(scope, 'internetFacing',
      'an internet-facing load balancer without a certificate would serve plain HTTP to the internet; pass certificate (HTTPS), ' +
      'set internetFacing: false (reachable from the VPC only), or opt in to plain HTTP with allowPlainHttp: true');
  }
  if (props.certificate) checkCertificateArn(scope, props.certificate.certificateArn);
  if ((props.domainName === undefined) !== (props.hostedZone === undefined)) {
    throw new InvalidPropError(scope, props.domainName ? 'hostedZone' : 'domainName',
      'goes with the other: give domainName (the name clients use) and hostedZone (the Route 53 zone it is in) together');
  }
  if (props.domainName && props.existingListener) {
    throw new InvalidPropError(scope, 'domainName', 'names a new load balancer, but existingListener uses one of yours: point your name at it there');
  }
  const zone = props.hostedZone && !Token.isUnresolved(props.hostedZone.zoneName) ? props.hostedZone.zoneName.replace(/\.$/, '') : undefined;
  if (props.domainName && !Token.isUnresolved(props.domainName) && zone && props.domainName !== zone && !props.domainName.endsWith(`.${zone}`)) {
    throw new InvalidPropError(scope, 'domainName', `('${props.domainName}') is not in the hosted zone ${zone}: give a name that ends in .${zone}`);
  }
  if (props.cluster && props.vpc) {
    throw new InvalidPropError(scope, 'vpc', 'is taken from the cluster when cluster is given; pass one of them');
  }
}

/** Whether a service may reach zero tasks: minCapacity 0, or a schedule's. */
export function scalesToZero(s: Pick<ServiceSettings, 'minCapacity'>, schedules: ModelServiceSchedule[] = []): boolean {
  return s.minCapacity === 0 || schedules.some((schedule) => schedule.minCapacity === 0);
}

const SCHEDULE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function validateSchedules(scope: IConstruct, schedules: ModelServiceSchedule[]): void {
  const names = new Set<string>();
  schedules.forEach((schedule, i) => {
    const at = `schedules[${i}]`;
    if (!SCHEDULE_NAME.test(schedule.name)) {
      throw new InvalidPropError(scope, `${at}.name`, `must be 1-64 letters, digits, '-' or '_', got '${schedule.name}'`);
    }
    if (names.has(schedule.name)) throw new InvalidPropError(scope, `${at}.name`, `'${schedule.name}' is taken by an earlier schedule; give each a name of its own`);
    names.add(schedule.name);
    if (schedule.minCapacity === undefined && schedule.maxCapacity === undefined) {
      throw new InvalidPropError(scope, at, 'changes nothing: give minCapacity, maxCapacity or both');
    }
    if (schedule.minCapacity !== undefined) checkIntRange(scope, `${at}.minCapacity`, schedule.minCapacity, 0, 1000);
    if (schedule.maxCapacity !== undefined) checkIntRange(scope, `${at}.maxCapacity`, schedule.maxCapacity, 0, 1000);
    if (schedule.minCapacity !== undefined && schedule.maxCapacity !== undefined && schedule.minCapacity > schedule.maxCapacity) {
      throw new InvalidPropError(scope, `${at}.minCapacity`, `(${schedule.minCapacity}) must not exceed its maxCapacity (${schedule.maxCapacity})`);
    }
  });
}

/** An ACM certificate's ARN, or an IAM server certificate's: the two kinds a load balancer listener takes. */
const ACM_ARN = /^arn:(aws[a-z-]*):acm:([a-z0-9-]+):(\d{12}):certificate\/[A-Za-z0-9-]+$/;
const IAM_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):server-certificate\/[\w+=,.@/-]+$/;

/**
 * A literal certificate ARN must have the shape a listener accepts, and an ACM certificate must be
 * in the stack's region (a load balancer can use only its own region's), when both are known.
 */
function checkCertificateArn(scope: IConstruct, arn: string): void {
  if (Token.isUnresolved(arn)) return;
  const acm = ACM_ARN.exec(arn);
  if (!acm && !IAM_ARN.test(arn)) {
    throw new InvalidPropError(scope, 'certificate',
      `has the ARN '${arn}', which is neither an ACM certificate's (arn:aws:acm:<region>:<account>:certificate/<id>) nor an IAM server certificate's`);
  }
  const region = Stack.of(scope).region;
  if (acm && !Token.isUnresolved(region) && acm[2] !== region) {
    throw new InvalidPropError(scope, 'certificate',
      `is in ${acm[2]}, but the load balancer is in ${region}: a listener can use only a certificate of its own region; request or import one in ${region}`);
  }
}

/**
 * Checks, once the model and the image are bound, that the image can serve the model on this
 * compute: the GPU model server needs GPUs, and a model whose files synth knows must be one the
 * built-in server's image reads (by the server's own list of formats).
 */
export function validateServable(
  scope: IConstruct, model: ModelSourceConfig, image: ServingImageConfig, gpuCount: number, environment: Record<string, string>,
): void {
  if (image.modelServer === 'gpu' && gpuCount === 0) {
    throw new InvalidPropError(scope, 'image', 'is the GPU model server (CUDA), which needs GPU capacity: use GpuModelService, or ServingImage.fromModelServer() without gpu');
  }
  // MODEL_FILE is relative to the model directory, or an absolute path inside it.
  const modelFile = environment.MODEL_FILE?.replace(new RegExp(`^${ModelContainerContract.MODEL_MOUNT_PATH}/`), '');
  const problem = image.modelServer && model.files && modelFilesProblem(model.files, image.modelServer, modelFile);
  if (problem) throw new InvalidPropError(scope, 'model', problem);
}

/**
 * maxConcurrentRequests: an integer from the task's worker count, so every worker admits one, to
 * the server's limit, by the rule the server applies at start (contract.json).
 */
export function checkMaxConcurrentRequests(scope: IConstruct, value: number | undefined, workers: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  const maximum = SERVER_RULES.maxConcurrentRequests.maximum;
  if (!Number.isInteger(value) || value < workers || value > maximum) {
    throw new InvalidPropError(scope, 'maxConcurrentRequests',
      `must be an integer from ${workers} (the task's server workers, each of which admits at least one) to ${maximum}, got ${value}`);
  }
}
