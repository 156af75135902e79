// Jest 30 can require() ESM natively only on Node >= 24.9. On Node 20 the ESM-only
// @nestjs/* packages are down-compiled to CommonJS by @swc/jest (transformIgnorePatterns).
// The same swc config compiles our TS with legacy decorators + emitDecoratorMetadata
// (needed for constructor injection by type). See docs/decisions.md. The options live in
// test/swc-options.js, shared with bench/register.js (bench scenarios and test child processes).
const { swcOptions: swc, tsconfigPaths } = require('./test/swc-options');

// tsconfig "paths" (@redwing/<lib>) -> moduleNameMapper, so jest follows the same aliases.
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const moduleNameMapper = {};
for (const { alias, wildcard, target } of tsconfigPaths()) {
  if (wildcard) moduleNameMapper[`^${esc(alias.slice(0, -1))}/(.*)$`] = `${target}/$1`;
  else moduleNameMapper[`^${esc(alias)}$`] = target;
}

/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testRegex: '\\.(spec|int-spec|e2e-spec)\\.ts$',
  transform: { '^.+\\.(t|j)s$': ['@swc/jest', swc] },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs)/)'],
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/libs/.*/dist/'],
  moduleNameMapper,
  globalSetup: '<rootDir>/test/global-setup.js',
  testTimeout: 30_000,
  maxWorkers: 2,
  collectCoverageFrom: ['apps/**/*.ts', 'libs/**/*.ts', '!**/*.spec.ts', '!**/*-spec.ts', '!**/main.ts'],
  coverageDirectory: './coverage',
};
