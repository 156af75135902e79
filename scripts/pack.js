#!/usr/bin/env node
// `npm run pack`: build every lib (scripts/build-libs.js), then `npm pack` each one into .pack/
// (gitignored), printing each tarball's path and size. An app outside this repo installs them with
//   npm install /path/to/redwing/.pack/redwing-redis-0.1.0.tgz
//
//   node scripts/pack.js                  build + pack every lib
//   node scripts/pack.js --skip-build     pack what libs/*/dist already holds
//
// Each tarball must hold only dist/, package.json, README.md and LICENSE (the `files` field of the lib's
// package.json decides; npm always adds package.json). Anything else (src/, specs, tsconfigs) fails the
// script, and so does a lib whose dist/index.js or dist/index.d.ts is missing.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { discoverLibs, topoOrder } = require('./build-libs');

const ROOT = path.resolve(__dirname, '..');
const PACK_DIR = path.join(ROOT, '.pack');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const ALLOWED = [/^package\.json$/, /^README\.md$/i, /^LICENSE$/, /^dist\//];

const say = (message) => console.log(`[pack] ${message}`);
const rel = (p) => path.relative(ROOT, p);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

function packLib(lib) {
  for (const f of ['index.js', 'index.d.ts']) {
    if (!fs.existsSync(path.join(lib.dir, 'dist', f)))
      throw new Error(`${lib.pkgName}: dist/${f} is missing; build first`);
  }
  if (!fs.existsSync(path.join(lib.dir, 'README.md'))) say(`warning: ${rel(lib.dir)}/README.md is missing`);
  const res = spawnSync(NPM, ['pack', '--json', '--pack-destination', PACK_DIR], {
    cwd: lib.dir,
    encoding: 'utf8',
    // No lifecycle scripts of the lib may run here; the build above is the only build.
    env: {
      ...process.env,
      npm_config_ignore_scripts: 'true',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    },
  });
  if (res.status !== 0) {
    process.stderr.write(res.stderr || '');
    throw new Error(`${lib.pkgName}: npm pack failed (exit ${res.status ?? res.signal})`);
  }
  // npm prints a JSON array on stdout (notices go to stderr); take the outermost array.
  const start = res.stdout.indexOf('[');
  const [info] = JSON.parse(res.stdout.slice(start));
  const tarball = path.join(PACK_DIR, info.filename);
  const stray = info.files.map((f) => f.path).filter((p) => !ALLOWED.some((re) => re.test(p)));
  if (stray.length) throw new Error(`${lib.pkgName}: tarball holds files outside dist/: ${stray.join(', ')}`);
  const size = fs.statSync(tarball).size;
  say(
    `${lib.pkgName}@${info.version}: ${rel(tarball)} (${kib(size)}, ${info.entryCount} files, unpacked ${kib(info.unpackedSize)})`,
  );
  return {
    name: lib.pkgName,
    version: info.version,
    dir: lib.dir,
    tarball,
    size,
    files: info.files.map((f) => f.path),
  };
}

function main(argv) {
  if (!argv.includes('--skip-build')) {
    const res = spawnSync(process.execPath, [path.join(__dirname, 'build-libs.js')], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (res.status !== 0) throw new Error(`build:libs failed (exit ${res.status ?? res.signal})`);
  }
  const libs = topoOrder(discoverLibs());
  fs.mkdirSync(PACK_DIR, { recursive: true });
  // Tarballs of earlier versions would otherwise pile up next to the fresh ones.
  for (const lib of libs) {
    const prefix = lib.pkgName.replace(/^@/, '').replace('/', '-') + '-';
    for (const f of fs.readdirSync(PACK_DIR)) {
      if (f.startsWith(prefix) && /^\d.*\.tgz$/.test(f.slice(prefix.length)))
        fs.rmSync(path.join(PACK_DIR, f));
    }
  }
  const packed = libs.map(packLib);
  fs.writeFileSync(path.join(PACK_DIR, 'manifest.json'), JSON.stringify(packed, null, 2) + '\n');
  say(
    `${packed.length} tarball(s) in ${rel(PACK_DIR)}/ (list: ${rel(path.join(PACK_DIR, 'manifest.json'))})`,
  );
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`[pack] ${err.message}`);
    process.exit(1);
  }
}
