// Lint is part of `npm test`: typed rules catch floating promises, which in a stream runtime
// mean lost records.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.infra/', '.scratch/', '**/fixtures/**', 'eslint.config.js', '.puppeteerrc.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The executor's in-page scripts run in the visitor's page (and its workers), never in Node:
    // browser globals only, so a Node global (process, Buffer) there is an error. The DOM
    // interfaces themselves come from TypeScript's lib (checkJs).
    files: ['processors/executor/inject/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { window: 'readonly', self: 'readonly', document: 'readonly', location: 'readonly', navigator: 'readonly' },
    },
  },
);
