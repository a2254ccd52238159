/** Unit suites assert synthesized templates; integ suites drive real processes (S3 server, Python, the CDK CLI). */
const tsJest = { '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.dev.json' }] };

module.exports = {
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
  projects: [
    { displayName: 'unit', testEnvironment: 'node', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'], transform: tsJest },
    { displayName: 'integ', testEnvironment: 'node', roots: ['<rootDir>/test/integ'], testMatch: ['**/*.test.ts'], transform: tsJest },
  ],
};
