// eslint with typescript-eslint over every TypeScript tree: the library, the CLI, the scripts, the
// benchmarks, the tests, the fetcher and the Lambda functions. `npm run lint` (part of `npm test`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/*.js', '**/*.d.ts', '**/dist/**', 'node_modules/**', 'cdk.out/**', '**/*.mjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // Tests and tools parse JSON of known shapes; the library itself keeps `any` to template JSON.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Constructs are created for their side effects (`new Bucket(this, ...)`), as in aws-cdk-lib.
      'no-new': 'off',
      eqeqeq: ['error', 'always'],
      // `let server; server = create(() => server...)`: a callback that reads what it is assigned to.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      'no-console': 'off',
    },
  },
);
