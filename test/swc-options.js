// The one swc configuration of the repo, shared by jest (jest.config.js → @swc/jest), the bench and test
// child processes (bench/register.js, a `--require` hook) — so a TypeScript file compiles the same way
// wherever it runs: CommonJS, legacy decorators + emitDecoratorMetadata (Nest injection by type), es2022,
// class names kept, inline source maps. No type checking; that is `npm run typecheck`'s job.
'use strict';

const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '..');

/** swc options for @swc/jest and for `transformSync` (the register adds `filename`, no .swcrc lookup). */
const swcOptions = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

/**
 * The tsconfig.json `paths` (`@redwing/<lib>` → libs/<lib>/src, …) as `{ alias, wildcard, target }`, target
 * an absolute path without the trailing `*`. jest turns them into moduleNameMapper entries; the register
 * resolves them in `Module._resolveFilename`.
 */
function tsconfigPaths() {
  const { config } = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  return Object.entries(config.compilerOptions.paths ?? {}).map(([alias, [target]]) => {
    const wildcard = alias.endsWith('/*');
    return {
      alias: wildcard ? alias.slice(0, -1) : alias, // '@redwing/redis/' or '@redwing/redis'
      wildcard,
      target: path.resolve(ROOT, wildcard ? target.slice(0, -1) : target),
    };
  });
}

module.exports = { ROOT, swcOptions, tsconfigPaths };
