#!/usr/bin/env node
// The corners of the compatibility matrix (issue 14): pack every lib, then run the outside-app test
// (test/packaging/outside-app.corner-spec.ts) once per corner. Each corner is a scratch app outside the repo
// that installs the tarballs with that corner's Nest and ioredis from the npm registry, builds with tsc,
// boots on Express and exercises every lib against a real redis-server.
//
//   node scripts/compat-corners.js                 build + pack, then the default corners
//   node scripts/compat-corners.js --skip-build    pack what libs/*/dist holds (CI: after `npm run build`)
//   node scripts/compat-corners.js --corner nest=11.1.0,ioredis=5.10.0 [--corner ...]
//
// The default corners come from the peer ranges @redwing/redis declares, so the ranges are what is tested:
//   oldest: the floor of the lowest alternative, exactly (`^11.0.0 || ^12.0.0` -> 11.0.0)
//   newest: the newest release of the highest alternative (`^12`), from the registry
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SPEC = 'test/packaging/outside-app.corner-spec.ts';
const say = (message) => console.log(`[corners] ${message}`);

/** `^11.0.0 || ^12.0.0` -> { floor: '11.0.0', newest: '^12' }. */
function corners(range) {
  const alternatives = range.split('||').map((s) => s.trim());
  const parsed = alternatives.map((alt) => {
    const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(alt);
    if (!m) throw new Error(`peer range alternative ${JSON.stringify(alt)} is not ^MAJOR.MINOR.PATCH`);
    return { major: Number(m[1]), floor: `${m[1]}.${m[2]}.${m[3]}` };
  });
  parsed.sort((a, b) => a.major - b.major);
  return { floor: parsed[0].floor, newest: `^${parsed[parsed.length - 1].major}` };
}

function defaultCorners() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'libs', 'redis', 'package.json'), 'utf8'));
  const nest = corners(pkg.peerDependencies['@nestjs/core']);
  const ioredis = corners(pkg.peerDependencies.ioredis);
  return [
    { nest: nest.floor, ioredis: ioredis.floor },
    { nest: nest.newest, ioredis: ioredis.newest },
  ];
}

function parseCorner(text) {
  const corner = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if ((k !== 'nest' && k !== 'ioredis') || !v) throw new Error(`bad --corner ${JSON.stringify(text)}`);
    corner[k] = v;
  }
  if (!corner.nest || !corner.ioredis) throw new Error(`--corner needs nest= and ioredis=: ${text}`);
  return corner;
}

function main(argv) {
  const list = [];
  for (let i = 0; i < argv.length; i++) if (argv[i] === '--corner') list.push(parseCorner(argv[++i] ?? ''));
  const todo = list.length ? list : defaultCorners();

  const packArgs = [
    path.join(__dirname, 'pack.js'),
    ...(argv.includes('--skip-build') ? ['--skip-build'] : []),
  ];
  const pack = spawnSync(process.execPath, packArgs, { cwd: ROOT, stdio: 'inherit' });
  if (pack.status !== 0) throw new Error(`pack failed (exit ${pack.status ?? pack.signal})`);

  const jest = require.resolve('jest/bin/jest', { paths: [ROOT] });
  const results = [];
  for (const corner of todo) {
    const label = `Nest ${corner.nest} + ioredis ${corner.ioredis}`;
    say(`${label}: ${SPEC}`);
    const started = Date.now();
    const r = spawnSync(
      process.execPath,
      [jest, '--ci', '--maxWorkers=1', SPEC, '--testRegex', 'corner-spec\\.ts$'],
      {
        cwd: ROOT,
        stdio: 'inherit',
        env: { ...process.env, REDWING_CORNER_NEST: corner.nest, REDWING_CORNER_IOREDIS: corner.ioredis },
      },
    );
    results.push({ label, ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000) });
  }
  for (const r of results) say(`${r.ok ? 'passed' : 'FAILED'}: ${r.label} (${r.seconds} s)`);
  return results.every((r) => r.ok) ? 0 : 1;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    console.error(`[corners] ${err.message}`);
    process.exit(1);
  }
}

module.exports = { corners };
