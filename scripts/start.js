#!/usr/bin/env node
// `npm start`: build the gateway, make sure it has a Redis (or say loudly that it has none), run it.
//
//   1. build the libs, then `nest build gateway` (skipped with SKIP_BUILD=1, e.g. by tests that reuse a build).
//   2. REDIS_URL unset -> redis://127.0.0.1:6379. If nothing answers a raw `PING` there within 500 ms, start a
//      throwaway `redis-server` (no persistence, loopback only, temp dir) on a free port when one is on PATH;
//      otherwise the gateway starts degraded on its in-memory fallbacks.
//      REDIS_URL set -> that Redis, always: a user who named a Redis gets it, even when it does not answer yet
//      (the gateway starts degraded, with the loud warning, and upgrades by itself once it answers). No
//      throwaway server ever replaces a Redis that was asked for by name.
//      (START_DEFAULT_REDIS_URL overrides the default URL; the tests use it to stay off the shared 6379.)
//   3. Run dist/apps/gateway/apps/gateway/src/main with that environment, forward SIGINT/SIGTERM/SIGHUP,
//      kill the throwaway redis-server (by PID) once the gateway has exited, and exit as the gateway did.
//
// No dependency beyond Node itself, so it works before anything but `npm install` has run.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const { GATEWAY_NODE_FLAGS } = require('./gateway-node-flags');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout, clearTimeout } = require('node:timers');
const { URL } = require('node:url');

const ROOT = path.resolve(__dirname, '..');
const ENTRY = path.join(ROOT, 'dist', 'apps', 'gateway', 'apps', 'gateway', 'src', 'main.js');
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const PING_TIMEOUT = 500;
const THROWAWAY_READY_TIMEOUT = 5_000;
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const say = (message) => console.log(`[start] ${message}`);

/** The URL with any password replaced, for printing. */
function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable REDIS_URL>';
  }
}

function build() {
  if (process.env.SKIP_BUILD === '1') {
    say('SKIP_BUILD=1: reusing the existing build');
  } else {
    // Libs first: the gateway imports them by package name (@redwing/<lib> -> libs/<lib>/dist), as an
    // app outside this repo would.
    const started = Date.now();
    const nest = require.resolve('@nestjs/cli/bin/nest.js', { paths: [ROOT] });
    const steps = [
      ['building the libraries (scripts/build-libs.js) ...', [path.join(ROOT, 'scripts', 'build-libs.js')]],
      ['building the gateway (nest build gateway) ...', [nest, 'build', 'gateway']],
    ];
    for (const [message, args] of steps) {
      say(message);
      const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
      if (result.status !== 0) {
        say(
          `build failed (exit ${result.status ?? result.signal}); fix the errors above and run npm start again`,
        );
        process.exit(result.status || 1);
      }
    }
    say(`build finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  warnStaleLinkedLibs();
  if (!fs.existsSync(ENTRY)) {
    say(`${path.relative(ROOT, ENTRY)} does not exist; run without SKIP_BUILD=1 (or npm run build) first`);
    process.exit(1);
  }
}

/** Newest modification time of the files under `dir` (0 when it does not exist). */
function newestMtime(dir) {
  let newest = 0;
  if (!fs.existsSync(dir)) return newest;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * `nest build` compiles `@redwing/<lib>` imports into dist/ only when no built package answers to that name;
 * when libs/<lib>/dist exists (after `npm run build:libs` or `npm run pack`), the gateway loads that build
 * instead, even if it is older than the sources. Say so, rather than run yesterday's library code.
 */
function warnStaleLinkedLibs() {
  const appDir = path.join(ROOT, 'dist', 'apps', 'gateway', 'apps');
  const linked = new Set();
  const scan = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) scan(full);
      else if (entry.name.endsWith('.js')) {
        for (const m of fs.readFileSync(full, 'utf8').matchAll(/require\("@redwing\/([a-z0-9-]+)"\)/g))
          linked.add(m[1]);
      }
    }
  };
  if (fs.existsSync(appDir)) scan(appDir);
  const stale = [...linked].filter(
    (lib) =>
      newestMtime(path.join(ROOT, 'libs', lib, 'src')) > newestMtime(path.join(ROOT, 'libs', lib, 'dist')),
  );
  if (stale.length > 0) {
    say(`WARNING: the gateway build loads libs/{${stale.join(',')}}/dist, which is older than its sources;`);
    say('         run `npm run build:libs` (or delete that dist folder) and start again.');
  }
}

/**
 * Resolves true when something at host:port answers `PING` with any RESP reply (`+PONG`, or `-NOAUTH` from a
 * server that wants a password: it is there all the same), false on refusal, silence or timeout.
 */
function answersPing(host, port, timeout = PING_TIMEOUT) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const done = (answered) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeout, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+') || reply.startsWith('-'));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

function isLoopback(host) {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

/** Absolute path of an executable found on PATH, or undefined. */
function which(command) {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT || '.EXE').split(';') : [''];
  for (const dir of (process.env.PATH || '').split(path.delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const candidate = path.join(dir, command + ext);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {}
    }
  }
  return undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a redis-server that keeps nothing; resolves { process, url, dir } once it answers PING, else undefined. */
async function startThrowawayRedis(binary) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redwing-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  // Its own process group: a Ctrl-C in the terminal reaches only this script, which stops the gateway first
  // and the Redis it depends on last.
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.on('error', (err) => (stderr += String(err)));
  const deadline = Date.now() + THROWAWAY_READY_TIMEOUT;
  while (Date.now() < deadline && child.exitCode === null && child.pid !== undefined) {
    if (await answersPing('127.0.0.1', port, 200)) {
      return { process: child, url: `redis://127.0.0.1:${port}`, dir };
    }
    await sleep(50);
  }
  await stopRedis({ process: child, dir });
  say(`the throwaway redis-server did not start: ${stderr.trim() || 'no answer within 5 s'}`);
  return undefined;
}

/** Stops a throwaway redis-server by PID and removes its directory; resolves once it has exited. */
async function stopRedis(redis) {
  if (!redis || redis.stopping) return redis?.stopping;
  const child = redis.process;
  const exited = () => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
  redis.stopping = (async () => {
    if (!exited()) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await gone;
      clearTimeout(timer);
    }
    fs.rmSync(redis.dir, { recursive: true, force: true });
  })();
  return redis.stopping;
}

/** Synchronous last resort for `process.on('exit')`. */
function killRedisNow(redis) {
  const child = redis?.process;
  if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    child.kill('SIGKILL');
  }
}

function warnDegraded(url, why) {
  const lines = [
    '',
    '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
    '!!  WARNING: NO REDIS. THE GATEWAY STARTS DEGRADED.',
    `!!  Nothing answered PING at ${redact(url)}`,
    `!!  ${why}`,
    '!!  It serves from in-memory fallbacks: cache and rate limits are per process,',
    '!!  sessions cannot be created, locks and job enqueues fail with 503.',
    '!!  /health/ready says "degraded"; the gateway upgrades by itself once Redis answers.',
    '!!  Fix: start Redis (docker compose up redis-cache, or install redis-server)',
    '!!       or point REDIS_URL at one.',
    '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
    '',
  ];
  console.warn(lines.join('\n'));
}

/**
 * Decides which Redis the gateway gets; may start a throwaway one. Returns the variables to change in the
 * gateway's environment (none when it should connect as configured) and the throwaway server, if any.
 */
async function resolveRedis() {
  if (!process.env.REDIS_URL && (process.env.REDIS_SENTINELS || process.env.REDIS_CLUSTER_NODES)) {
    say('using the Sentinel/Cluster topology from REDIS_SENTINELS / REDIS_CLUSTER_NODES');
    return { env: {} };
  }
  const explicit = Boolean(process.env.REDIS_URL);
  const url = process.env.REDIS_URL || process.env.START_DEFAULT_REDIS_URL || DEFAULT_REDIS_URL;
  const configured = { env: { REDIS_URL: url } };
  let target;
  try {
    target = new URL(url);
  } catch {
    // Not ours to judge: the gateway's config validation names the problem precisely.
    return configured;
  }
  if (target.protocol !== 'redis:') {
    // A raw PING cannot speak TLS; let the gateway connect (or report degraded) itself.
    say(`using REDIS_URL ${redact(url)}`);
    return configured;
  }
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const port = Number(target.port || 6379);
  if (await answersPing(host, port)) {
    say(`using Redis at ${redact(url)}`);
    return configured;
  }
  if (explicit) {
    // The user named this Redis: connect to it (degraded until it answers), never to a stand-in.
    warnDegraded(
      url,
      'REDIS_URL names this Redis, so the gateway waits for it; no throwaway redis-server replaces it.',
    );
    return configured;
  }
  if (!isLoopback(host)) {
    warnDegraded(url, 'It is not on this machine, so no throwaway redis-server replaces it.');
    return configured;
  }
  const binary = which('redis-server');
  if (!binary) {
    warnDegraded(url, 'redis-server is not on PATH, so no throwaway one could be started.');
    return configured;
  }
  const redis = await startThrowawayRedis(binary);
  if (!redis) {
    warnDegraded(url, 'Starting a throwaway redis-server failed (see above).');
    return configured;
  }
  say(`REDIS_URL is unset and nothing answered at ${redact(url)}, so a throwaway redis-server was started`);
  say(
    `  throwaway redis-server pid ${redis.process.pid} at ${redis.url} (no persistence; stopped with the gateway)`,
  );
  // The throwaway server has no password, so credentials meant for the real one must not be sent to it.
  return { env: { REDIS_URL: redis.url, REDIS_USERNAME: undefined, REDIS_PASSWORD: undefined }, redis };
}

async function main() {
  build();
  const { env: redisEnv, redis } = await resolveRedis();
  const env = { ...process.env, ...redisEnv };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];

  const gateway = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, ENTRY], {
    cwd: ROOT,
    env,
    stdio: 'inherit',
    // Own process group (see startThrowawayRedis): signals arrive once, forwarded by us.
    detached: true,
  });
  say(`gateway pid ${gateway.pid}`);

  const forward = (signal) => {
    if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  // Last resort if this script dies some other way: never leave the children behind.
  process.on('exit', () => {
    forward('SIGTERM');
    killRedisNow(redis);
  });

  gateway.on('error', async (err) => {
    say(`could not run the gateway: ${err.message}`);
    await stopRedis(redis);
    process.exit(1);
  });
  gateway.on('exit', async (code, signal) => {
    // Signals that arrive while Redis stops must not kill this script before the cleanup is done.
    for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
    for (const s of FORWARDED_SIGNALS) process.on(s, () => undefined);
    if (redis) {
      await stopRedis(redis);
      say(`throwaway redis-server pid ${redis.process.pid} stopped`);
    }
    for (const s of FORWARDED_SIGNALS) process.removeAllListeners(s);
    if (signal) {
      // Die of the same signal, so whoever started us sees what happened to the gateway.
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}

main().catch((err) => {
  console.error('[start] failed:', err);
  process.exit(1);
});
