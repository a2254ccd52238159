/**
 * Unit suites assert synthesized templates; integ suites drive real processes (S3 server, Python,
 * the CDK CLI); container suites build and run the real images with a Docker engine.
 */
const tsJest = { '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.dev.json' }] };

module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    { displayName: 'unit', testEnvironment: 'node', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'], transform: tsJest },
    { displayName: 'integ', testEnvironment: 'node', roots: ['<rootDir>/test/integ'], testMatch: ['**/*.test.ts'], transform: tsJest },
    { displayName: 'containers', testEnvironment: 'node', roots: ['<rootDir>/test/containers'], testMatch: ['**/*.test.ts'], transform: tsJest },
  ],
};
