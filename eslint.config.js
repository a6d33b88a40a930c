// ESLint flat config: `npm run lint` (run by .ci/run after type-checking).
// typescript-eslint's `recommended` set, not the type-checked one, so lint
// stays a few seconds; tsc --noEmit does the type checking.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default defineConfig(
  {
    // Generated code (Prisma client, Pothos types, codegen output), local data and bench output.
    ignores: ['node_modules/', '.parley/', 'src/generated/', 'examples/generated/', 'test/generated/', 'bench/results/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    // CommonJS config files (.dependency-cruiser.cjs).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    languageOptions: {
      // Node scripts (.mjs/.js) are not seen by TypeScript, so name Node's globals for no-undef.
      globals: { process: 'readonly', console: 'readonly' },
    },
    rules: {
      // A leading underscore marks a deliberately unused argument, binding or caught error.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['bench/**'],
    // Benchmarks read untyped GraphQL results and IPC messages; typing each would add nothing.
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['bench/**'],
    // bench/ measures the app: it may import src/, never the test suite (its
    // own helpers live in bench/lib/), so either can change without the other.
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(\\.\\./)+test/', message: 'bench/ does not import from test/: put what it needs in bench/lib/.' }] },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression[source.value=/^(\\.\\.\\/)+test\\//]',
          message: 'bench/ does not import from test/: put what it needs in bench/lib/.',
        },
      ],
    },
  },
  // Formatting is Prettier's (npm run format); turn off the rules that would argue with it.
  prettier,
);
