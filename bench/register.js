// Require hook that lets plain `node` run the TypeScript bench scenarios — and the child processes tests
// fork (stampede workers, child apps, drivers; they set REDWING_BENCH_LIBS=src) — without a build step:
//   node --require ./bench/register.js bench/redis-client.bench.ts
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
const { transformSync } = require('@swc/core');
const { ROOT, swcOptions, tsconfigPaths } = require('../test/swc-options');

const SWC_OPTIONS = { ...swcOptions, swcrc: false, configFile: false };

const MODE = process.env.REDWING_BENCH_LIBS === 'src' ? 'src' : 'dist';

// tsconfig "paths" resolved against the repo root (src mode only).
const aliases = MODE === 'src' ? tsconfigPaths() : [];

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
  const { code } = transformSync(source, { ...SWC_OPTIONS, filename });
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
