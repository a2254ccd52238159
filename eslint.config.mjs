// eslint with typescript-eslint over every TypeScript and JavaScript module tree: the library, the
// CLI, the scripts, the benchmarks, the tests, the fetcher and the Lambda functions, and the build
// scripts (*.mjs). `npm run lint` (part of `npm test`). Type-aware rules (floating promises) read
// each tree's own tsconfig.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/*.js', '**/*.d.ts', '**/dist/**', 'node_modules/**', 'cdk.out/**', 'test/fixtures/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { '@stylistic': stylistic, 'import-x': importX },
    rules: {
      // aws-cdk's own bound; a message that names a prop, its value and the fix stays on one line.
      '@stylistic/max-len': ['error', { code: 150, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true }],
      // Node's built-ins, then packages, then this repository's modules, each group alphabetical.
      'import-x/order': ['error', {
        groups: ['builtin', 'external', ['internal', 'parent', 'sibling', 'index']],
        'newlines-between': 'never',
        alphabetize: { order: 'asc', caseInsensitive: true },
      }],
      // Every package imported is declared in the package.json nearest the importing file.
      'import-x/no-extraneous-dependencies': ['error', { devDependencies: true }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.dev.json', './assets/model-fetcher/tsconfig.json', './assets/functions/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Tests and tools parse JSON of known shapes; the library itself keeps `any` to template JSON.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A promise nobody awaits fails silently: await it, return it, or mark it `void` on purpose.
      '@typescript-eslint/no-floating-promises': 'error',
      // Static members (factories first, as in aws-cdk-lib), fields, the constructor, then methods.
      '@typescript-eslint/member-ordering': ['error', {
        default: ['signature', 'static-field', 'static-method', 'field', 'constructor', 'method'],
      }],
      // Constructs are created for their side effects (`new Bucket(this, ...)`), as in aws-cdk-lib.
      'no-new': 'off',
      // `let server; server = create(() => server...)`: a callback that reads what it is assigned to.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // What ships runs in a team's app: it may import the peer dependencies and Node's built-ins only.
    files: ['lib/**/*.ts'],
    rules: { 'import-x/no-extraneous-dependencies': ['error', { devDependencies: false, peerDependencies: true }] },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
);
