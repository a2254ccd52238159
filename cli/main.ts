#!/usr/bin/env node
import { CliError, describeError } from './errors';
import { publish, PUBLISH_USAGE } from './publish';
import { SCAN_GATE_USAGE, scanGate } from './scan-gate';
import { smoke, SMOKE_USAGE } from './smoke';

/**
 * `cdk-model-serving`: the steps of a CI pipeline around `cdk deploy`.
 *
 *   npx cdk synth
 *   npx cdk-model-serving publish --add-tag git-$GITHUB_SHA
 *   npx cdk-model-serving scan-gate --severity HIGH
 *   npx cdk deploy --app cdk.out --all --require-approval never --outputs-file cdk-outputs.json
 *   npx cdk-model-serving smoke --outputs-file cdk-outputs.json
 */
const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; usage: string }> = {
  'publish': { run: publish, usage: PUBLISH_USAGE },
  'scan-gate': { run: scanGate, usage: SCAN_GATE_USAGE },
  'smoke': { run: smoke, usage: SMOKE_USAGE },
};

const USAGE = `Usage: cdk-model-serving <command> [options]

Commands:
  publish    publish a synthesized app's assets with cdk-assets; print each image's repository and digest
  scan-gate  wait for the ECR scans of the images; fail on findings at or above a severity
  smoke      wait for the endpoint's /health, send one /predict and check the answer's shape

'cdk-model-serving <command> --help' describes a command.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new CliError(`unknown command '${name}': use publish, scan-gate or smoke (see --help)`, 2);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  return command.run(rest);
}

const command = process.argv[2] ?? '';
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // Node's own argument errors (an unknown flag, a missing value) are usage errors too.
    const usage = typeof err?.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`cdk-model-serving ${command}: ${describeError(err)}${usage ? ' (see --help)' : ''}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : usage ? 2 : 1;
  },
);
