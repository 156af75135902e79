import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HOST, freePort } from '../../test/harness/ports';

// Benchmarks only ever bind and connect to loopback (HOST); ports come from the test harness's allocator,
// which never hands out the same port twice in one process.
export { HOST, freePort };

const START_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 3_000;

export interface BenchRedis {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly url: string;
  /** SIGTERM, then SIGKILL after 3 s; removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave a redis-server behind, whatever way the bench ends.
  process.on('exit', () => {
    for (const child of live) {
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {}
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => process.exit(130));
  }
}

/**
 * Start a throw-away `redis-server` on a free loopback port: no persistence (`--save ""`,
 * `--appendonly no`), its own temp dir, and resolve once it accepts connections.
 * Extra `redis-server` arguments may be passed (e.g. `['--maxmemory', '64mb']`).
 */
export async function startRedis(extraArgs: string[] = []): Promise<BenchRedis> {
  installExitHook();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await spawnOn(port, extraArgs);
    } catch (err) {
      lastError = err; // most likely the port was taken in between: try another one
    }
  }
  throw lastError;
}

/** Runs `body` against a fresh startRedis() server and stops that server afterwards, whatever happens. */
export async function withRedis<T>(body: (redis: BenchRedis) => Promise<T>): Promise<T> {
  const redis = await startRedis();
  try {
    return await body(redis);
  } finally {
    await redis.stop();
  }
}

function spawnOn(port: number, extraArgs: string[]): Promise<BenchRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redwing-bench-redis-'));
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--loglevel', 'warning',
    ...extraArgs,
  ]; // prettier-ignore
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4_000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4_000)));

  let stopped: Promise<void> | undefined;
  child.once('exit', (code, signal) => {
    // A bench that loses its Redis fails on errors anyway; say why it went away.
    if (!stopped)
      process.stderr.write(
        `redis-server pid ${child.pid} (port ${port}) exited: code ${code}, signal ${signal}\n`,
      );
  });
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      const cleanUp = () => {
        live.delete(child);
        fs.rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return cleanUp();
      const killTimer = setTimeout(() => {
        try {
          if (child.pid) process.kill(child.pid, 'SIGKILL');
        } catch {}
      }, STOP_TIMEOUT_MS);
      child.once('exit', () => {
        clearTimeout(killTimer);
        cleanUp();
      });
      try {
        if (child.pid) process.kill(child.pid, 'SIGTERM');
      } catch {}
    });
    return stopped;
  };

  return new Promise<BenchRedis>((resolve, reject) => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      void stop().then(() => reject(new Error(`redis-server on port ${port} ${why}\n${output.trim()}`)));
    };
    child.once('error', (err) => fail(`could not start: ${err.message} (is redis-server on PATH?)`));
    child.once('exit', (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
    const probe = () => {
      if (settled) return;
      if (Date.now() > deadline) return fail(`did not answer PING within ${START_TIMEOUT_MS} ms`);
      void ping(port).then((ok) => {
        if (settled) return;
        if (!ok) return void setTimeout(probe, 50);
        settled = true;
        resolve({ host: HOST, port, pid: child.pid!, url: `redis://${HOST}:${port}`, stop });
      });
    };
    setTimeout(probe, 30);
  });
}

/** Raw RESP PING; resolves true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    const finish = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => finish(false));
    sock.once('error', () => finish(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => finish(d.toString().startsWith('+PONG')));
  });
}
