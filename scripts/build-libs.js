#!/usr/bin/env node
// `npm run build:libs`: build every lib under libs/* that has a package.json to libs/<lib>/dist
// (CommonJS JavaScript + .d.ts + source maps), the layout its package.json points at
// (`main: dist/index.js`, `types: dist/index.d.ts`).
//
//   node scripts/build-libs.js            every lib, in dependency order
//   node scripts/build-libs.js redis      only the named lib(s) (their @redwing deps must be built)
//   node scripts/build-libs.js --keep-going   build what builds, report the rest (exit 1 if any failed)
//
// How: for each lib a build tsconfig is generated under .tmp/build-libs/ (gitignored) and compiled with
// `tsc -p`. It extends the root tsconfig (same strictness, decorators, `module: nodenext`, which emits
// CommonJS because no package.json here has a "type" field) and overrides:
//   - rootDir libs/<lib>/src, outDir libs/<lib>/dist  -> dist/index.js, not dist/libs/<lib>/src/index.js
//     (emitted into libs/<lib>/.dist-tmp-<pid> and renamed to dist/ once tsc succeeded);
//   - include src/**, exclude specs (*.spec.ts, *-spec.ts) and test/;
//   - sourceMap + inlineSources: the tarball ships dist/ only, so the maps carry the TS sources themselves;
//   - incremental off (no tsbuildinfo inside dist), types: node only (no jest globals in a lib);
//   - paths: "@redwing/<other>" -> libs/<other>/dist/index.d.ts, the *built declarations* of the other lib;
//     the root tsconfig's other aliases (e.g. `redlock-types`, the types of redlock used by the lock lib,
//     see types/redlock.d.ts) are kept, re-rooted to the generated config;
//   - stripInternal: members and declarations marked `@internal` do not ship in the .d.ts (the public API
//     is what api/<lib>.api.md lists; see scripts/api-report.js).
//
// Why that `paths` choice: TypeScript never rewrites module specifiers, so `import … from '@redwing/redis'`
// stays a package import in the emitted JS whatever `paths` says; `paths` only decides which types the
// checker sees. The root tsconfig maps @redwing/* to the other lib's *src*, which would pull those files
// into the program and break rootDir (TS6059) — so the build maps to the other lib's dist/*.d.ts instead,
// exactly what an app installing the tarballs type-checks against. That is why libs are built in
// dependency order (deps and peerDeps on @redwing/* in each lib's package.json).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const LIBS_DIR = path.join(ROOT, 'libs');
const GEN_DIR = path.join(ROOT, '.tmp', 'build-libs');
const TSC = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
const SCOPE = '@redwing/';

const say = (message) => console.log(`[build-libs] ${message}`);
const rel = (p) => path.relative(ROOT, p) || '.';

/** Every lib dir with a package.json: { dir, name (folder), pkgName, deps (@redwing folder names) }. */
function discoverLibs() {
  if (!fs.existsSync(LIBS_DIR)) return [];
  const libs = [];
  for (const entry of fs.readdirSync(LIBS_DIR, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(LIBS_DIR, entry.name);
    const pkgFile = path.join(dir, 'package.json');
    if (!fs.existsSync(pkgFile)) continue;
    const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
    const refs = { ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies };
    libs.push({
      dir,
      name: entry.name,
      pkgName: pkg.name,
      depPkgs: Object.keys(refs).filter((d) => d.startsWith(SCOPE)),
    });
  }
  const byPkg = new Map(libs.map((l) => [l.pkgName, l]));
  for (const lib of libs) lib.deps = lib.depPkgs.filter((d) => byPkg.has(d)).map((d) => byPkg.get(d).name);
  return libs.sort((a, b) => a.name.localeCompare(b.name));
}

/** Libs ordered so that every lib comes after the @redwing libs it depends on. */
function topoOrder(libs) {
  const byName = new Map(libs.map((l) => [l.name, l]));
  const done = new Set();
  const visiting = new Set();
  const order = [];
  const visit = (lib, trail) => {
    if (done.has(lib.name)) return;
    if (visiting.has(lib.name))
      throw new Error(`dependency cycle between libs: ${[...trail, lib.name].join(' -> ')}`);
    visiting.add(lib.name);
    for (const dep of lib.deps) visit(byName.get(dep), [...trail, lib.name]);
    visiting.delete(lib.name);
    done.add(lib.name);
    order.push(lib);
  };
  for (const lib of libs) visit(lib, []);
  return order;
}

/** Writes .tmp/build-libs/<lib>.tsconfig.json and returns its path. Paths in it are relative to it. */
function writeBuildConfig(lib, allLibs, outDir) {
  fs.mkdirSync(GEN_DIR, { recursive: true });
  const r = (p) => path.relative(GEN_DIR, p).split(path.sep).join('/');
  const paths = {};
  const { compilerOptions = {} } = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8'));
  for (const [alias, targets] of Object.entries(compilerOptions.paths ?? {})) {
    if (!alias.startsWith(SCOPE)) paths[alias] = targets.map((t) => r(path.join(ROOT, t)));
  }
  for (const other of allLibs) {
    if (other.name === lib.name) continue;
    paths[other.pkgName] = [r(path.join(other.dir, 'dist', 'index.d.ts'))];
    paths[`${other.pkgName}/*`] = [r(path.join(other.dir, 'dist', '*'))];
  }
  const config = {
    extends: r(path.join(ROOT, 'tsconfig.json')),
    compilerOptions: {
      rootDir: r(path.join(lib.dir, 'src')),
      outDir: r(outDir),
      declaration: true,
      declarationMap: false,
      stripInternal: true,
      sourceMap: true,
      inlineSources: true,
      incremental: false,
      composite: false,
      noEmit: false,
      types: ['node'],
      paths,
    },
    include: [r(path.join(lib.dir, 'src', '**', '*.ts')), r(path.join(ROOT, 'types', '**', '*.d.ts'))],
    exclude: [
      r(path.join(lib.dir, 'src', '**', '*.spec.ts')),
      r(path.join(lib.dir, 'src', '**', '*-spec.ts')),
      r(path.join(lib.dir, 'src', '**', '__tests__', '**')),
    ],
  };
  const file = path.join(GEN_DIR, `${lib.name}.tsconfig.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

function buildLib(lib, allLibs) {
  const started = Date.now();
  const entry = path.join(lib.dir, 'src', 'index.ts');
  if (!fs.existsSync(entry))
    throw new Error(`${lib.pkgName}: ${rel(entry)} is missing (the lib's public API)`);
  for (const dep of lib.deps) {
    const depDts = path.join(LIBS_DIR, dep, 'dist', 'index.d.ts');
    if (!fs.existsSync(depDts))
      throw new Error(`${lib.pkgName} needs ${rel(depDts)}: build libs/${dep} first`);
  }
  // Build next to dist/ and swap it in at the end, so a reader (a running test or bench, a concurrent
  // build) never sees a half-written or missing dist/, and a failed build leaves the previous one in place.
  const outDir = path.join(lib.dir, 'dist');
  const tmpDir = path.join(lib.dir, `.dist-tmp-${process.pid}`);
  removeStaleTempDirs(lib.dir);
  const config = writeBuildConfig(lib, allLibs, tmpDir);
  say(`${lib.pkgName}: tsc -p ${rel(config)} -> ${rel(outDir)}`);
  try {
    const res = spawnSync(process.execPath, [TSC, '-p', config], { cwd: ROOT, stdio: 'inherit' });
    if (res.status !== 0) throw new Error(`${lib.pkgName}: tsc failed (exit ${res.status ?? res.signal})`);
    if (!fs.existsSync(path.join(tmpDir, 'index.js')) || !fs.existsSync(path.join(tmpDir, 'index.d.ts'))) {
      throw new Error(`${lib.pkgName}: tsc succeeded but index.js or index.d.ts was not emitted`);
    }
    const old = path.join(lib.dir, `.dist-old-${process.pid}`);
    if (fs.existsSync(outDir)) fs.renameSync(outDir, old);
    fs.renameSync(tmpDir, outDir);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  const files = listFiles(outDir);
  say(`${lib.pkgName}: ok, ${files.length} files in ${Date.now() - started} ms`);
}

/** Leftovers of builds that died between tsc and the swap (their process is gone). */
function removeStaleTempDirs(libDir) {
  for (const name of fs.readdirSync(libDir)) {
    const m = /^\.dist-(?:tmp|old)-(\d+)$/.exec(name);
    if (!m) continue;
    let alive = Number(m[1]) === process.pid;
    try {
      process.kill(Number(m[1]), 0);
      alive = true;
    } catch {}
    if (!alive) fs.rmSync(path.join(libDir, name), { recursive: true, force: true });
  }
}

function listFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

function main(argv) {
  const all = discoverLibs();
  if (all.length === 0) {
    say('no libs/*/package.json found; nothing to build');
    return;
  }
  const keepGoing = argv.includes('--keep-going');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !all.some((l) => l.name === n || l.pkgName === n));
  if (unknown.length) {
    throw new Error(`unknown lib(s): ${unknown.join(', ')}. Known: ${all.map((l) => l.name).join(', ')}`);
  }
  const order = topoOrder(all).filter(
    (l) => names.length === 0 || names.includes(l.name) || names.includes(l.pkgName),
  );
  say(`building ${order.length} lib(s): ${order.map((l) => l.pkgName).join(', ')}`);
  const failed = new Set();
  for (const lib of order) {
    const blockedBy = lib.deps.filter((d) => failed.has(d));
    if (blockedBy.length) {
      failed.add(lib.name);
      say(`${lib.pkgName}: skipped, it needs ${blockedBy.map((d) => `libs/${d}`).join(', ')}`);
      continue;
    }
    try {
      buildLib(lib, all);
    } catch (err) {
      if (!keepGoing) throw err;
      failed.add(lib.name);
      console.error(`[build-libs] ${err.message}`);
    }
  }
  if (failed.size) throw new Error(`failed: ${[...failed].map((n) => `libs/${n}`).join(', ')}`);
  say('done');
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`[build-libs] ${err.message}`);
    process.exit(1);
  }
}

module.exports = { discoverLibs, topoOrder };
