// One npm package installed into a temp prefix, outside the repo (its node_modules and lockfile untouched), and
// reused while the installed version still matches: the ioredis 5 suite and the Node LTS runs use it.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** The version of `name` installed under `prefix`, or undefined. */
function installedVersion(prefix, name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(prefix, 'node_modules', name, 'package.json'), 'utf8'))
      .version;
  } catch {
    return undefined;
  }
}

/**
 * Makes `name@spec` present under `prefix` unless `wanted(installedVersion)` already holds; returns the
 * package's directory. Throws when npm fails or the result still does not match.
 */
function installInto(prefix, name, spec, wanted, { timeoutMs = 300_000, say = console.log } = {}) {
  if (!wanted(installedVersion(prefix, name))) {
    fs.mkdirSync(prefix, { recursive: true });
    say(`npm install --prefix ${prefix} ${name}@${spec}`);
    const args = ['install', '--no-fund', '--no-audit', '--no-save', '--loglevel=error', '--prefix', prefix];
    const r = spawnSync('npm', [...args, `${name}@${spec}`], { stdio: 'inherit', timeout: timeoutMs });
    const now = installedVersion(prefix, name);
    if (r.status !== 0 || !wanted(now)) {
      throw new Error(
        `installing ${name}@${spec} failed (exit ${r.status ?? r.signal}; found ${now ?? 'nothing'})`,
      );
    }
  }
  return path.join(prefix, 'node_modules', name);
}

module.exports = { installInto, installedVersion };
