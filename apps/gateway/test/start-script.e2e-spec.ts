// `npm start` (scripts/start.js) end to end: with REDIS_URL unset and no Redis at the default URL, it starts a
// throwaway redis-server, the gateway becomes ready on it, and SIGTERM stops the gateway and then that
// redis-server. Without redis-server on PATH it starts degraded and says so loudly. A REDIS_URL the user set is
// honoured even when it does not answer: degraded, loud, no throwaway, and ready once that Redis starts.
// The default URL is pointed at a closed port (START_DEFAULT_REDIS_URL), never at the shared 6379.
// Reuses a build (SKIP_BUILD=1).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, isProcessAlive, RedisServer, stopAll } from '../../../test/harness';
import { GATEWAY_NODE_FLAGS } from '../../../scripts/gateway-node-flags';
import { until } from './support';

const ROOT = resolve(__dirname, '../../..');
const ENTRY = join(ROOT, 'dist/apps/gateway/apps/gateway/src/main.js');

/** Newest modification time of the .ts files under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function buildIfStale(): void {
  const sources = [
    join(ROOT, 'apps/gateway/src'),
    ...readdirSync(join(ROOT, 'libs')).map((l) => join(ROOT, 'libs', l, 'src')),
  ];
  const newest = Math.max(...sources.filter(existsSync).map(newestSource));
  if (existsSync(ENTRY) && statSync(ENTRY).mtimeMs >= newest) return;
  execFileSync(process.execPath, [require.resolve('@nestjs/cli/bin/nest.js'), 'build', 'gateway'], {
    cwd: ROOT,
    stdio: 'pipe',
  });
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs scripts/start.js with `env` on top of ours; a variable set to undefined is removed. */
function runStart(env: Record<string, string | undefined>): Started {
  let output = '';
  const merged: NodeJS.ProcessEnv = {
    ...process.env,
    SKIP_BUILD: '1',
    LOG_LEVEL: 'warn',
    REDIS_HEALTH_CHECK_INTERVAL: '200',
    ...env,
  };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  const child = spawn(process.execPath, [join(ROOT, 'scripts/start.js')], {
    cwd: ROOT,
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('exit', (code, signal) => done({ code, signal })),
  );
  return { child, output: () => output, exited };
}

async function readiness(
  port: number,
): Promise<{ status: string; redis: Record<string, { url: string }> } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
    return res.ok
      ? ((await res.json()) as { status: string; redis: Record<string, { url: string }> })
      : undefined;
  } catch {
    return undefined;
  }
}

/** Waits up to `timeout` ms for `probe` to return a value; the timeout error carries the script's output. */
function untilStarted<T>(
  started: Started,
  what: string,
  timeout: number,
  probe: () => Promise<T | undefined> | T | undefined,
) {
  return until(what, timeout, probe, { details: () => `output:\n${started.output()}` });
}

/** Waits up to 15 s for the gateway on `port` to say it is ready (readiness `ok`), and returns that answer. */
function untilReady(started: Started, port: number) {
  return untilStarted(started, 'readiness ok', 15_000, async () => {
    const r = await readiness(port);
    return r?.status === 'ok' ? r : undefined;
  });
}

describe('scripts/start.js', () => {
  const running: Started[] = [];

  beforeAll(() => buildIfStale(), 300_000);

  afterAll(async () => {
    for (const s of running) {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    }
    await stopAll();
  });

  it('starts a throwaway redis-server when REDIS_URL is unset and nothing answers, and stops it after the gateway on SIGTERM', async () => {
    const [port, closedPort] = [await freePort(), await freePort()];
    const started = runStart({
      PORT: String(port),
      REDIS_URL: undefined,
      START_DEFAULT_REDIS_URL: `redis://127.0.0.1:${closedPort}`,
    });
    running.push(started);

    const redisPid = await untilStarted(started, 'the throwaway redis-server', 10_000, () =>
      /throwaway redis-server pid (\d+) at redis:\/\/127\.0\.0\.1:(\d+)/.exec(started.output())?.slice(1),
    );
    const gatewayPid = Number(
      await untilStarted(
        started,
        'the gateway pid',
        10_000,
        () => /gateway pid (\d+)/.exec(started.output())?.[1],
      ),
    );
    expect(Number(redisPid[1])).not.toBe(closedPort);
    expect(isProcessAlive(Number(redisPid[0]))).toBe(true);

    const ready = await untilReady(started, port);
    expect(ready.redis.default.url).toBe(`redis://127.0.0.1:${redisPid[1]}`);
    // The gateway runs with its Node flags (scripts/gateway-node-flags.js), as start:prod and the Dockerfile do.
    const argv = readFileSync(`/proc/${gatewayPid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(1, 1 + GATEWAY_NODE_FLAGS.length)).toEqual(GATEWAY_NODE_FLAGS);

    started.child.kill('SIGTERM');
    const { code, signal } = await started.exited;
    // The gateway closed cleanly on SIGTERM and re-raised it; the script exits the way the gateway did.
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    expect(isProcessAlive(gatewayPid)).toBe(false);
    expect(isProcessAlive(Number(redisPid[0]))).toBe(false);
    expect(started.output()).toContain(`throwaway redis-server pid ${redisPid[0]} stopped`);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  }, 40_000);

  it('starts degraded, and says so loudly, when there is no Redis and no redis-server on PATH', async () => {
    const [port, closedPort] = [await freePort(), await freePort()];
    // The script runs node from process.execPath, so an empty PATH hides only redis-server.
    const emptyDir = mkdtempSync(join(tmpdir(), 'redwing-path-'));
    try {
      const started = runStart({
        PORT: String(port),
        REDIS_URL: undefined,
        START_DEFAULT_REDIS_URL: `redis://127.0.0.1:${closedPort}`,
        PATH: emptyDir,
      });
      running.push(started);
      const ready = await untilStarted(started, 'degraded readiness', 15_000, () => readiness(port));
      expect(ready.status).toBe('degraded');
      expect(started.output()).toMatch(/WARNING: NO REDIS\. THE GATEWAY STARTS DEGRADED/);
      expect(started.output()).toContain('redis-server is not on PATH');
      expect(started.output()).not.toContain('throwaway redis-server pid');
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

      started.child.kill('SIGINT');
      expect(await started.exited).toEqual({ code: null, signal: 'SIGINT' });
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
    }
  }, 40_000);

  it('honours an explicit REDIS_URL that does not answer: degraded and loud, no throwaway, ready once it starts', async () => {
    const [port, redisPort] = [await freePort(), await freePort()];
    const started = runStart({ PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort}` });
    running.push(started);
    const degraded = await untilStarted(started, 'degraded readiness', 15_000, () => readiness(port));
    expect(degraded.status).toBe('degraded');
    expect(degraded.redis.default.url).toBe(`redis://127.0.0.1:${redisPort}`);
    expect(started.output()).toMatch(/WARNING: NO REDIS\. THE GATEWAY STARTS DEGRADED/);
    expect(started.output()).toContain('REDIS_URL names this Redis');
    expect(started.output()).not.toContain('throwaway redis-server pid');

    // The named Redis comes up on its port: the gateway upgrades by itself, on that Redis.
    const redis = await RedisServer.start({ port: redisPort });
    try {
      const ready = await untilReady(started, port);
      expect(ready.redis.default.url).toBe(`redis://127.0.0.1:${redisPort}`);
      started.child.kill('SIGTERM');
      expect(await started.exited).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      await redis.stop();
    }
  }, 40_000);

  it('uses a Redis that answers PING and hides its password', async () => {
    const redis = await RedisServer.start({ requirepass: 'start-script-secret' });
    try {
      const port = await freePort();
      const started = runStart({ PORT: String(port), REDIS_URL: redis.url(), LOG_LEVEL: 'log' });
      running.push(started);
      const ready = await untilReady(started, port);
      expect(ready.redis.default.url).toBe(`redis://:***@127.0.0.1:${redis.port}`);
      expect(started.output()).toContain(`using Redis at redis://:***@127.0.0.1:${redis.port}`);
      expect(started.output()).not.toContain('start-script-secret');
      expect(started.output()).not.toContain('throwaway');
      started.child.kill('SIGTERM');
      await started.exited;
    } finally {
      await redis.stop();
    }
  }, 40_000);
});
