#!/usr/bin/env node
// `npm run bench`: run the benchmark scenarios in bench/<name>.bench.ts, each in its own Node process.
//
//   npm run bench                               every scenario
//   npm run bench -- redis-client               one (or several: redis-client cache-l2)
//   npm run bench -- redis-client --rounds 3 --ms 1000 --warmup 500 --variant autopipeline --strict
//   npm run bench -- --list
//   npm run bench -- redis-client --src         measure libs/*/src compiled by swc instead of the tsc build
//   npm run bench -- gateway --keep-build       keep the compiled scenarios (.tmp/bench-build/<run>/) afterwards
//
// By default the libs are built first (`node scripts/build-libs.js`) and the scenarios load that build
// (libs/<lib>/dist: what the tarballs ship); `--no-build` skips the build. See bench/register.js.
//
// Flags after the names go to every scenario (see bench/lib/options.ts; env BENCH_ROUNDS, BENCH_MS,
// BENCH_WARMUP_MS, BENCH_VARIANT, BENCH_STRICT work too). `--node-arg=<flag>` passes a flag to node
// itself, e.g. `--node-arg=--cpu-prof --node-arg=--cpu-prof-dir=.tmp/prof`.
//
// Scenarios are TypeScript. Before running any, this script compiles bench/**/*.ts and every file they import
// by relative path (test/harness/ports.ts, apps/gateway/src/…) once, with @swc/core and the options of
// test/swc-options.js (CommonJS, legacy decorators + decorator metadata), to .tmp/bench-build/<run>/ (the same
// paths under it; removed at the end, kept with --keep-build). Scenarios and the server processes they fork
// run that JavaScript: no process being measured compiles TypeScript in memory. The libs they import come
// from the tsc build (or from src/ with --src, compiled on load by bench/register.js: quicker to iterate, not
// what users run). Each scenario starts its own redis-server on a free 127.0.0.1 port. Output: one JSON line
// per measurement plus a summary table; the JSON lines are also appended to bench/results/<name>-<time>.jsonl
// (gitignored). Exit code 1 if any scenario failed (or, with --strict, missed its goal).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { setTimeout, clearTimeout } = require('node:timers');

const ROOT = path.resolve(__dirname, '..');
const BENCH_DIR = path.join(ROOT, 'bench');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const SUFFIX = '.bench.ts';
const BUILD_ROOT = path.join(ROOT, '.tmp', 'bench-build');
/** A scenario that runs longer than this is killed (its own loops are bounded far below it). */
const SCENARIO_TIMEOUT_MS = Number(process.env.BENCH_SCENARIO_TIMEOUT_MS) || 15 * 60_000;

const say = (message) => console.log(`[bench] ${message}`);

function scenarios() {
  return fs
    .readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

function parseArgs(argv) {
  const names = [];
  const passThrough = [];
  const nodeArgs = [];
  const mode = { src: false, noBuild: false, keepBuild: false };
  let list = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--list') list = true;
    else if (a === '--src') mode.src = true;
    else if (a === '--no-build') mode.noBuild = true;
    else if (a === '--keep-build') mode.keepBuild = true;
    else if (a.startsWith('--node-arg=')) nodeArgs.push(a.slice('--node-arg='.length));
    else if (a.startsWith('-')) {
      passThrough.push(a);
      // `--rounds 3`: the value travels with its flag.
      if (!a.includes('=') && a !== '--strict' && argv[i + 1] !== undefined && !argv[i + 1].startsWith('-')) {
        passThrough.push(argv[++i]);
      }
    } else names.push(a.endsWith(SUFFIX) ? path.basename(a, SUFFIX) : a);
  }
  return { names, passThrough, nodeArgs, list, mode };
}

/** Relative specifiers a TypeScript file imports, requires or dynamically imports (type-only ones too). */
const RELATIVE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"](\.{1,2}\/[^'"\n]+)['"]/g;

/** The file a relative specifier names: itself, `.ts`, `/index.ts`, or a non-TypeScript file as is. */
function resolveImport(from, specifier) {
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [base + '.ts', path.join(base, 'index.ts'), base]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

function allBenchSources(dir = BENCH_DIR) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== RESULTS_DIR) out.push(...allBenchSources(p));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Writes `content` to `file` through a temporary name, so a reader never sees half a file. */
function writeAtomically(file, content) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

/**
 * Compiles every bench/**\/*.ts and the files they import by relative path (transitively) with @swc/core into
 * `outDir` (same relative paths; `x.ts` becomes `x.js`, plus a copy under the `.ts` name for scenarios that
 * fork `path.join(__dirname, 'x.ts')`, which bench/register.js loads as the JavaScript it is). Other files
 * imported by relative path (JSON, JS) are copied. `bench/register.js` there forwards to the real one.
 * Returns the number of files compiled.
 */
function compileBench(outDir) {
  const { transformSync } = require('@swc/core');
  const { swcOptions } = require('../test/swc-options');
  const options = { ...swcOptions, swcrc: false, configFile: false };
  const queue = allBenchSources();
  const seen = new Set(queue);
  let compiled = 0;
  while (queue.length > 0) {
    const file = queue.pop();
    const rel = path.relative(ROOT, file);
    if (rel.startsWith('..')) throw new Error(`bench imports ${file}, outside the repository`);
    const source = fs.readFileSync(file, 'utf8');
    if (!file.endsWith('.ts')) {
      writeAtomically(path.join(outDir, rel), source);
      continue;
    }
    const { code } = transformSync(source, { ...options, filename: file });
    const target = path.join(outDir, rel.slice(0, -'.ts'.length) + '.js');
    writeAtomically(target, code);
    writeAtomically(path.join(outDir, rel), code);
    compiled++;
    for (const m of source.matchAll(RELATIVE_IMPORT)) {
      const dep = resolveImport(file, m[1]);
      if (dep && !seen.has(dep)) {
        seen.add(dep);
        queue.push(dep);
      }
    }
  }
  writeAtomically(
    path.join(outDir, 'bench', 'register.js'),
    `// Generated by scripts/bench.js: the compiled scenarios fork children with this path.\n` +
      `require(${JSON.stringify(path.join(BENCH_DIR, 'register.js'))});\n`,
  );
  return compiled;
}

function runScenario(name, passThrough, nodeArgs, libs, buildDir) {
  const file = path.join(buildDir, 'bench', name + '.bench.js');
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsFile = path.join(RESULTS_DIR, `${name}-${stamp}.jsonl`);
  const out = fs.createWriteStream(resultsFile);
  const args = [
    '--expose-gc',
    '--require',
    path.join(BENCH_DIR, 'register.js'),
    ...nodeArgs,
    file,
    ...passThrough,
  ];
  say(`${name} (libs from ${libs}): node ${args.map((a) => path.relative(ROOT, a) || a).join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, REDWING_BENCH_LIBS: libs, REDWING_BENCH_BUILD: buildDir },
    });
    const timer = setTimeout(() => {
      say(`${name}: still running after ${SCENARIO_TIMEOUT_MS / 1000} s; killing pid ${child.pid}`);
      child.kill('SIGKILL');
    }, SCENARIO_TIMEOUT_MS);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      process.stdout.write(line + '\n');
      if (line.startsWith('{')) out.write(line + '\n');
    });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      out.end();
      say(
        `${name}: ${code === 0 ? 'ok' : `FAILED (exit ${code ?? signal})`}; JSON lines in ${path.relative(ROOT, resultsFile)}`,
      );
      resolve(code === 0);
    });
  });
}

async function main() {
  const { names, passThrough, nodeArgs, list, mode } = parseArgs(process.argv.slice(2));
  const known = scenarios();
  if (list) {
    for (const n of known) console.log(n);
    return 0;
  }
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    console.error(
      `[bench] unknown scenario(s): ${unknown.join(', ')}. Known: ${known.join(', ') || '(none)'}`,
    );
    return 2;
  }
  const selected = names.length ? names : known;
  if (selected.length === 0) {
    say(`no ${SUFFIX} files in bench/`);
    return 0;
  }
  const libs = mode.src ? 'src' : 'dist';
  if (libs === 'dist' && !mode.noBuild) {
    const build = spawnSync(process.execPath, [path.join(__dirname, 'build-libs.js'), '--keep-going'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    // A lib that does not build only matters to the scenarios that load it: bench/register.js refuses to
    // load a missing or stale dist/, naming the lib.
    if (build.status !== 0) say('build:libs failed for some lib(s); scenarios that load them will fail');
  }
  const buildDir = path.join(BUILD_ROOT, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  const started = Date.now();
  const compiled = compileBench(buildDir);
  say(
    `compiled ${compiled} TypeScript files to ${path.relative(ROOT, buildDir)} in ${Date.now() - started} ms`,
  );
  const failed = [];
  try {
    for (const name of selected) {
      if (!(await runScenario(name, passThrough, nodeArgs, libs, buildDir))) failed.push(name);
    }
  } finally {
    if (mode.keepBuild) say(`kept ${path.relative(ROOT, buildDir)} (--keep-build)`);
    else fs.rmSync(buildDir, { recursive: true, force: true });
  }
  if (failed.length) say(`failed: ${failed.join(', ')}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[bench] ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
