/**
 * Unit suites assert synthesized templates; integ suites drive real processes (S3 server, Python,
 * the CDK CLI) with Debian's Python packages standing in for the server's pins; integ-pinned runs
 * the server suites again on exactly what requirements.txt pins, installed by pip
 * (test/helpers/pinned-stack.ts); container suites build and run the real images with a Docker
 * engine.
 */
const tsJest = { '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.dev.json' }] };
/**
 * No test leans on jest's 5 s default: synthesizing an app takes seconds, and several times that
 * on a busy machine. A test that needs longer (starting servers, building images) says so itself.
 */
const testTimeout = 60_000;

module.exports = {
  testTimeout,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    { displayName: 'unit', testEnvironment: 'node', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'], transform: tsJest },
    { displayName: 'integ', testEnvironment: 'node', roots: ['<rootDir>/test/integ'], testMatch: ['**/*.test.ts'], transform: tsJest },
    {
      displayName: 'integ-pinned',
      testEnvironment: 'node',
      roots: ['<rootDir>/test/integ'],
      testMatch: ['**/model-server*.test.ts'],
      setupFiles: ['<rootDir>/test/pinned-stack.setup.ts'],
      transform: tsJest,
    },
    { displayName: 'containers', testEnvironment: 'node', roots: ['<rootDir>/test/containers'], testMatch: ['**/*.test.ts'], transform: tsJest },
  ],
};
