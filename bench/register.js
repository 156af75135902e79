// Require hook that lets plain `node` run the TypeScript bench scenarios — and the child processes tests
// fork (stampede workers, child apps, drivers; they set REDWING_BENCH_LIBS=src) — without a build step:
//   node --require ./bench/register.js bench/redis-client.bench.ts
//
// `npm run bench` does not rely on it for the scenarios: scripts/bench.js compiles bench/ once per run to
// .tmp/bench-build/<run>/ (REDWING_BENCH_BUILD) and runs that JavaScript. There this hook only resolves
// `@redwing/<lib>` (below) and loads the `.ts`-named copies of compiled files (a scenario may fork
// `path.join(__dirname, 'x.ts')`) as the JavaScript they are; swc is not even loaded. `compiledInMemory()`
// counts the files it did compile, which the bench server processes check (bench/lib/server.ts).
//
// - `.ts` files are compiled on load with the installed @swc/core (`transformSync`), using the options of
//   test/swc-options.js, which jest.config.js uses too: CommonJS, legacy decorators + emitDecoratorMetadata
//   (Nest injection by type). No type checking; that is `npm run typecheck`'s job.
// - `@redwing/<lib>` imports load what ships: libs/<lib>/dist, the tsc build (`npm run build:libs`, which
//   scripts/bench.js runs first), through the workspace symlink node_modules/@redwing/<lib>. This matters:
//   swc's CommonJS output turns every cross-module access (e.g. `Admission.Rejected`) into a getter call,
//   tsc's does not, and on a ~8 µs/op path that difference shows in the ratio. A dist/ older than its src/
//   is refused. REDWING_BENCH_LIBS=src (`npm run bench -- --src`) maps them to libs/<lib>/src through the
//   tsconfig `paths` instead, compiled by swc: quicker to iterate, but not what users run.
// - node_modules are not compiled: on Node >= 20.19 `require()` of the ESM-only @nestjs/* packages works
//   natively (require(esm)).
'use strict';

const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const MODE = process.env.REDWING_BENCH_LIBS === 'src' ? 'src' : 'dist';
/** The compiled bench of this `npm run bench` run, when there is one. */
const BUILD = process.env.REDWING_BENCH_BUILD
  ? path.resolve(process.env.REDWING_BENCH_BUILD) + path.sep
  : undefined;

// tsconfig "paths" resolved against the repo root (src mode only; reading tsconfig.json loads typescript).
const aliases = MODE === 'src' ? require('../test/swc-options').tsconfigPaths() : [];

/** swc and its options, loaded on the first TypeScript file compiled here. */
let swc;
const COMPILED = Symbol.for('redwing.bench.compiledInMemory');
globalThis[COMPILED] = 0;

const originalResolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, isMain, options) {
  for (const a of aliases) {
    if (a.wildcard ? request.startsWith(a.alias) : request === a.alias) {
      const mapped = a.wildcard ? path.join(a.target, request.slice(a.alias.length)) : a.target;
      return originalResolve.call(this, mapped, parent, isMain, options);
    }
  }
  return originalResolve.call(this, request, parent, isMain, options);
};

Module._extensions['.ts'] = function (module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  if (BUILD && filename.startsWith(BUILD)) {
    // A `.ts`-named copy of a file scripts/bench.js compiled: JavaScript already.
    module._compile(source, filename);
    return;
  }
  if (!swc) {
    const { swcOptions } = require('../test/swc-options');
    swc = {
      transformSync: require('@swc/core').transformSync,
      options: { ...swcOptions, swcrc: false, configFile: false },
    };
  }
  const { code } = swc.transformSync(source, { ...swc.options, filename });
  globalThis[COMPILED]++;
  module._compile(code, filename);
};

/** Newest mtime of any file under `dir` (ms), or 0. */
function newest(dir, skip) {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, skip));
    else if (!skip.test(e.name)) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

/** dist mode: the first time a scenario loads `@redwing/<lib>`, make sure that lib's build is there and fresh. */
const checked = new Set();
function checkBuilt(lib) {
  checked.add(lib);
  const src = path.join(ROOT, 'libs', lib, 'src');
  const dist = path.join(ROOT, 'libs', lib, 'dist');
  if (!fs.existsSync(src)) return; // not one of ours; let Node report it
  if (!fs.existsSync(path.join(dist, 'index.js'))) {
    throw new Error(
      `bench: libs/${lib}/dist is missing; run \`npm run build:libs\` (or REDWING_BENCH_LIBS=src)`,
    );
  }
  if (newest(src, /[.-]spec\.ts$/) > newest(dist, /^$/)) {
    throw new Error(`bench: libs/${lib}/dist is older than libs/${lib}/src; run \`npm run build:libs\``);
  }
}

if (MODE === 'dist') {
  const resolveBuilt = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, isMain, options) {
    const m = /^@redwing\/([^/]+)/.exec(request);
    if (m && !checked.has(m[1])) checkBuilt(m[1]);
    return resolveBuilt.call(this, request, parent, isMain, options);
  };
}

process.env.REDWING_BENCH_LIBS = MODE;
process.setSourceMapsEnabled(true);
