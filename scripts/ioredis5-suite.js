#!/usr/bin/env node
// The libs' integration suites on ioredis 5 (issue 14), without touching the repo's node_modules or lockfile:
//
//   node scripts/ioredis5-suite.js                         every libs/**/*.int-spec.ts on the ioredis 5 floor
//   node scripts/ioredis5-suite.js --ioredis 5.11.1        another 5.x
//   node scripts/ioredis5-suite.js -- libs/redis --maxWorkers=1   extra jest arguments (paths narrow the run)
//
// ioredis 5 is installed into a temp prefix (default: the floor of the `^5.x.y` alternative of the peer range
// @redwing/redis declares). Every `ioredis` import then resolves there:
//   - in jest (test files, the libs' sources, and bullmq, which takes ioredis as a peer) through a
//     moduleNameMapper entry in a temp jest config that extends jest.config.js;
//   - in the child processes some tests fork (lock, job-queue, cache stampede, metrics apps) through a
//     --require hook in NODE_OPTIONS that redirects Module._resolveFilename for `ioredis` and `ioredis/*`.
// A setup file fails every test file whose `ioredis` is not the temp copy, so the run cannot silently test v6.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { corners } = require('./compat-corners');
const { installInto } = require('./prefix-install');

const ROOT = path.resolve(__dirname, '..');
const say = (message) => console.log(`[ioredis5] ${message}`);

function floorVersion() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'libs', 'redis', 'package.json'), 'utf8'));
  const range = pkg.peerDependencies.ioredis;
  const alt = range
    .split('||')
    .map((s) => s.trim())
    .find((s) => /^\^5\./.test(s));
  if (!alt) throw new Error(`@redwing/redis does not accept ioredis 5 (${range})`);
  return corners(alt).floor;
}

function install(version) {
  const prefix = path.join(os.tmpdir(), `redwing-ioredis-${version}`);
  const dir = installInto(prefix, 'ioredis', version, (v) => v === version, { say });
  return { dir, main: require.resolve(dir) };
}

function main(argv) {
  const sep = argv.indexOf('--');
  const own = sep >= 0 ? argv.slice(0, sep) : argv;
  const extra = sep >= 0 ? argv.slice(sep + 1) : [];
  const i = own.indexOf('--ioredis');
  const version = i >= 0 ? own[i + 1] : floorVersion();
  if (!/^5\.\d+\.\d+$/.test(version ?? ''))
    throw new Error(`--ioredis needs an exact 5.x.y version, got ${version}`);
  const io5 = install(version);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'redwing-ioredis5-'));
  const hook = path.join(work, 'redirect-ioredis.js');
  fs.writeFileSync(
    hook,
    `'use strict';
const Module = require('node:module');
const path = require('node:path');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, isMain, options) {
  if (request === 'ioredis') return ${JSON.stringify(io5.main)};
  if (request.startsWith('ioredis/')) {
    return resolve.call(this, path.join(${JSON.stringify(io5.dir)}, request.slice('ioredis/'.length)), parent, isMain, options);
  }
  return resolve.call(this, request, parent, isMain, options);
};
`,
  );
  const check = path.join(work, 'check-ioredis.js');
  fs.writeFileSync(
    check,
    `'use strict';
const resolved = require.resolve('ioredis');
if (resolved !== ${JSON.stringify(io5.main)}) {
  throw new Error('ioredis resolves to ' + resolved + ', not the ioredis ${version} under test');
}
`,
  );
  const config = path.join(work, 'jest.config.js');
  fs.writeFileSync(
    config,
    `'use strict';
const base = require(${JSON.stringify(path.join(ROOT, 'jest.config.js'))});
module.exports = {
  ...base,
  rootDir: ${JSON.stringify(ROOT)},
  moduleNameMapper: {
    '^ioredis$': ${JSON.stringify(io5.main)},
    '^ioredis/(.*)$': ${JSON.stringify(io5.dir + '/$1')},
    ...base.moduleNameMapper,
  },
  setupFiles: [...(base.setupFiles ?? []), ${JSON.stringify(check)}],
};
`,
  );

  const jest = require.resolve('jest/bin/jest', { paths: [ROOT] });
  const paths = extra.some((a) => !a.startsWith('-')) ? [] : ['libs/'];
  // --testRegex takes several values: it goes last, or it would swallow the paths.
  const args = [jest, '--config', config, ...paths, ...extra, '--testRegex', 'int-spec\\.ts$'];
  const nodeOptions = [process.env.NODE_OPTIONS, `--require ${hook}`].filter(Boolean).join(' ');
  say(`ioredis ${version} (${io5.dir}): jest ${args.slice(1).join(' ')}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: nodeOptions, REDWING_IOREDIS_UNDER_TEST: version },
  });
  say(
    `ioredis ${version}: exit ${r.status ?? r.signal} after ${Math.round((Date.now() - started) / 1000)} s`,
  );
  fs.rmSync(work, { recursive: true, force: true });
  return r.status ?? 1;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    console.error(`[ioredis5] ${err.message}`);
    process.exit(1);
  }
}
