import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', '.pack/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      // A lib is used through its index only: `@redwing/<lib>/<file>` reaches past the public API
      // (and past the API report that pins it), so it is not allowed anywhere in the repo.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@redwing/*/*'],
              message:
                "Import from the lib's index ('@redwing/<lib>'), not a file inside it; export the name from libs/<lib>/src/index.ts if it is public.",
            },
          ],
        },
      ],
    },
  },
  {
    // Type-aware rules (the bugs review kept catching): promises nobody awaits, async callbacks where a
    // void one is expected, switches that miss a member of a union. They need type information, so they
    // run on TypeScript files only (JS config and scripts stay untyped).
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
    },
  },
);
