// The real gateway as `npm start` runs it (dist/apps/gateway/apps/gateway/src/main.js, the `npm run build`
// output, with the gateway's Node flags), in its own Node process, for the gateway scenario.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compiledScript } from '../lib/http';
import { HOST, freePort } from '../lib/redis-server';

const ROOT = path.resolve(__dirname, '..', '..');
/** Under `npm run bench` this file runs from .tmp/bench-build/<run>/bench/gateway: find the repository. */
const REPO = fs.existsSync(path.join(ROOT, 'package.json'))
  ? ROOT
  : path.resolve(process.env.REDWING_BENCH_BUILD ?? ROOT, '..', '..', '..');

/**
 * The Node flags the gateway runs with everywhere (scripts/gateway-node-flags.js: `npm start`, `start:prod`, the
 * Dockerfile). The scenario gives its peers' process the same flags, so both sides run on the same runtime settings.
 */
export const GATEWAY_NODE_FLAGS = (
  require(path.join(REPO, 'scripts', 'gateway-node-flags.js')) as {
    GATEWAY_NODE_FLAGS: readonly string[];
  }
).GATEWAY_NODE_FLAGS;
export const GATEWAY_ENTRY = path.join(REPO, 'dist', 'apps', 'gateway', 'apps', 'gateway', 'src', 'main.js');
const CLK_TCK = 100; // USER_HZ on Linux

/** Newest modification time under `dir` (ms), spec files left out; 0 when it does not exist. */
function newest(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (!/[.-]spec\.ts$/.test(e.name)) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Makes sure the gateway build exists and is not older than apps/gateway/src: runs `nest build gateway`
 * (what `npm run build` runs after the libs, which scripts/bench.js has built) when it is missing or stale.
 */
export function ensureGatewayBuild(log: (message: string) => void): void {
  const entryTime = fs.existsSync(GATEWAY_ENTRY) ? fs.statSync(GATEWAY_ENTRY).mtimeMs : 0;
  const built = newest(path.dirname(GATEWAY_ENTRY));
  if (entryTime > 0 && built >= newest(path.join(REPO, 'apps', 'gateway', 'src'))) return;
  log(`gateway build ${entryTime > 0 ? 'older than apps/gateway/src' : 'missing'}: nest build gateway ...`);
  const nest = require.resolve('@nestjs/cli/bin/nest.js', { paths: [REPO] });
  const result = spawnSync(process.execPath, [nest, 'build', 'gateway'], { cwd: REPO, stdio: 'inherit' });
  if (result.status !== 0)
    throw new Error(`nest build gateway failed (exit ${result.status ?? result.signal})`);
}

/** user + system CPU time of a process so far, µs (Linux /proc; 10 ms resolution). */
export function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLK_TCK;
}

/** A running gateway: its URL, its CPU, and stop(). */
export interface GatewayProcess {
  readonly url: string;
  readonly pid: number;
  /** user + system CPU µs so far. */
  cpu(): Promise<number>;
  /** SIGTERM (the gateway's graceful shutdown), SIGKILL after 20 s. */
  stop(): Promise<void>;
}

/**
 * The environment of the bench gateway, laid over this process's: its Redis, fastify, metrics on (always
 * in the gateway) with tracing and Sentry off (no `OTEL_*` endpoint or exporter, no `SENTRY_DSN`), and the
 * `GET /boards` limit raised to 1,000,000 a minute, as a user would set it for a load test from one client
 * address (`GET /boards/:id`, the measured route, has no limit of its own; the global guard runs anyway).
 */
export function gatewayEnv(redisUrl: string, port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(OTEL_|SENTRY_|REDIS_|RATE_LIMIT_|CACHE_|METRICS_|SESSION_|JOB_QUEUE_|LIVE_|LOCK_)/.test(name)) {
      delete env[name];
    }
  }
  return {
    ...env,
    REDIS_URL: redisUrl,
    PORT: String(port),
    HOST,
    HTTP_ADAPTER: 'fastify',
    RATE_LIMIT_BOARDS: '1000000',
    LOG_LEVEL: 'warn',
  };
}

/**
 * Starts the built gateway on a free port against `redisUrl` and resolves once `GET /health` answers.
 * Node flags for it (e.g. `--cpu-prof --cpu-prof-dir=.tmp/prof`) come from `BENCH_SERVER_NODE_ARGS`, like
 * the other bench servers'. With `--src` (REDWING_BENCH_LIBS=src) it loads the libs from libs/<lib>/src
 * through bench/register.js; otherwise from libs/<lib>/dist, as `npm start` does.
 */
export async function startGateway(redisUrl: string): Promise<GatewayProcess> {
  const port = await freePort();
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const preload = process.env.REDWING_BENCH_LIBS === 'src' ? [path.join(REPO, 'bench', 'register.js')] : [];
  if (extra.some((a) => a.startsWith('--cpu-prof'))) {
    const hook = compiledScript(path.join(__dirname, 'exit-on-sigterm.ts'));
    // Not compiled (run outside npm run bench): bench/register.js loads the .ts.
    if (hook.endsWith('.ts') && preload.length === 0) preload.push(path.join(REPO, 'bench', 'register.js'));
    preload.push(hook);
  }
  const child: ChildProcess = spawn(
    process.execPath,
    [...GATEWAY_NODE_FLAGS, ...preload.flatMap((p) => ['--require', p]), ...extra, GATEWAY_ENTRY],
    {
      cwd: REPO,
      env: gatewayEnv(redisUrl, port),
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const url = `http://${HOST}:${port}`;
  let exited: number | string | null | undefined;
  child.once('exit', (code, signal) => (exited = code ?? signal));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`the gateway exited (${exited}) before it answered`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the gateway did not answer GET /health within 60 s');
    }
    try {
      const res = await fetch(`${url}/health`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = child.pid!;
  return {
    url,
    pid,
    cpu: () => Promise.resolve(cpuMicros(pid)),
    stop: async () => {
      process.off('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
