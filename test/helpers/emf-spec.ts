/**
 * The CloudWatch Embedded Metric Format specification's rules, as a validator: what CloudWatch
 * Logs checks before it turns a log line into metrics (a line that breaks one is kept as a log
 * event but yields no metric).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
const UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
  'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second',
  'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second',
  'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);

/** The ways `line` breaks the specification (empty: a valid EMF document). */
export function emfViolations(line: string): string[] {
  const problems: string[] = [];
  if (Buffer.byteLength(line) > 1024 * 1024) problems.push('a log event is at most 1 MiB');
  let doc: any;
  try {
    doc = JSON.parse(line);
  } catch {
    return ['not JSON'];
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['the root must be an object'];
  const aws = doc._aws;
  if (typeof aws !== 'object' || aws === null) return ['no _aws metadata object'];
  if (!Number.isInteger(aws.Timestamp) || aws.Timestamp < 0) problems.push('_aws.Timestamp must be whole milliseconds since the epoch');
  const directives = aws.CloudWatchMetrics;
  if (!Array.isArray(directives) || directives.length === 0) return [...problems, '_aws.CloudWatchMetrics must be a non-empty array'];
  for (const [i, d] of directives.entries()) {
    const at = `CloudWatchMetrics[${i}]`;
    if (typeof d.Namespace !== 'string' || d.Namespace.length < 1 || d.Namespace.length > 1024) problems.push(`${at}.Namespace must be a string of 1-1024 characters`);
    if (!Array.isArray(d.Dimensions)) {
      problems.push(`${at}.Dimensions must be an array of dimension sets`);
    } else {
      for (const set of d.Dimensions) {
        if (!Array.isArray(set) || set.length > 30) {
          problems.push(`${at}: a dimension set is an array of at most 30 names`);
          continue;
        }
        for (const name of set) {
          const value = doc[name];
          if (typeof value !== 'string') problems.push(`${at}: dimension ${name} must name a string member of the root`);
          else if (value.length < 1 || value.length > 1024) problems.push(`${at}: dimension ${name}'s value must have 1-1024 characters`);
        }
      }
    }
    if (!Array.isArray(d.Metrics) || d.Metrics.length === 0 || d.Metrics.length > 100) {
      problems.push(`${at}.Metrics must hold 1-100 metric definitions`);
      continue;
    }
    for (const m of d.Metrics) {
      if (typeof m.Name !== 'string' || m.Name.length < 1 || m.Name.length > 1024) problems.push(`${at}: a metric's Name must be a string of 1-1024 characters`);
      if (m.Unit !== undefined && !UNITS.has(m.Unit)) problems.push(`${at}: ${m.Name}'s Unit ${m.Unit} is not a CloudWatch unit`);
      if (m.StorageResolution !== undefined && m.StorageResolution !== 1 && m.StorageResolution !== 60) problems.push(`${at}: StorageResolution is 1 or 60`);
      const value = doc[m.Name];
      const numbers = Array.isArray(value) ? value : [value];
      if (Array.isArray(value) && (value.length === 0 || value.length > 100)) problems.push(`${at}: ${m.Name} holds ${value.length} values; 1-100 are allowed`);
      if (!numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) problems.push(`${at}: ${m.Name} must be a number or an array of numbers`);
    }
  }
  return problems;
}
