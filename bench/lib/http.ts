// The load-generator end of the HTTP benchmarks: the apps under test run in a child process (its end is
// server.ts), so autocannon never shares their event loop and "CPU µs/op" is the server process's CPU per
// request. Not re-exported by index.ts: it loads autocannon.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { HOST, withRedis } from './redis-server';

/** The part of autocannon's result the benches read (autocannon ships no types). */
export interface AutocannonResult {
  requests: { total: number };
  latency: { average: number; p50: number; p99: number };
  /** Elapsed time of the run, s. */
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** The autocannon options the benches pass. */
export interface AutocannonOptions {
  url: string;
  connections: number;
  /** s */
  duration: number;
  pipelining?: number;
  headers?: Record<string, string>;
  requests?: Array<{
    method: string;
    setupRequest?: (req: Record<string, unknown>) => Record<string, unknown>;
  }>;
}

export const autocannon = require('autocannon') as (options: AutocannonOptions) => Promise<AutocannonResult>;

/** How the server process is forked. */
export interface ServerOptions {
  /** Node flags before bench/register.js (e.g. `--expose-gc`, for ServerProcess.gc()). */
  execArgv?: string[];
  /** The server's stdout: dropped, or mixed into the bench's own. @default 'ignore' */
  stdout?: 'ignore' | 'inherit';
}

type Reply = { id: number; value: unknown };

/** The compiled `.js` beside a `.ts` script when there is one (scripts/bench.js wrote it), else `script`. */
export function compiledScript(script: string): string {
  if (!script.endsWith('.ts')) return script;
  const js = `${script.slice(0, -'.ts'.length)}.js`;
  return existsSync(js) ? js : script;
}

/** A bench server running in its own Node process, with request/response over IPC (see server.ts). */
export class ServerProcess {
  private seq = 0;
  private readonly pending = new Map<number, (v: unknown) => void>();

  private constructor(
    private readonly child: ChildProcess,
    /** The port of each app, by the name the server gave it. */
    readonly ports: Record<string, number>,
  ) {
    child.on('message', (m: Reply) => {
      const done = this.pending.get(m.id);
      if (done) {
        this.pending.delete(m.id);
        done(m.value);
      }
    });
  }

  /**
   * Forks `script` and waits for its `ready(ports)`. Under `npm run bench` the scenario runs compiled
   * (scripts/bench.js), so `script` — `path.join(__dirname, 'x.ts')` — has a compiled `x.js` beside it, which
   * is what runs; otherwise the `.ts` is compiled on load by bench/register.js. Node flags for the server only
   * (e.g. `--cpu-prof`) go in `BENCH_SERVER_NODE_ARGS`.
   */
  static start(
    script: string,
    env: Record<string, string>,
    options: ServerOptions = {},
  ): Promise<ServerProcess> {
    const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = fork(compiledScript(script), [], {
      execArgv: [
        ...(options.execArgv ?? []),
        '--require',
        path.join(__dirname, '..', 'register.js'),
        ...extra,
      ],
      env: { ...process.env, ...env },
      stdio: ['ignore', options.stdout ?? 'ignore', 'inherit', 'ipc'],
    });
    process.once('exit', () => child.kill('SIGKILL'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script}: not ready within 60 s`)), 60_000);
      child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
      child.once('message', (m: { ready?: Record<string, number> }) => {
        clearTimeout(timer);
        if (m.ready) resolve(new ServerProcess(child, m.ready));
        else reject(new Error(`${script}: unexpected first message ${JSON.stringify(m)}`));
      });
    });
  }

  /** `http://127.0.0.1:<port of app>` followed by `path`. */
  url(app: string, path = ''): string {
    return `http://${HOST}:${this.ports[app]}${path}`;
  }

  /** Asks the server something (`cpu`, `gc`, `stats`, …; see server.ts). */
  ask<T>(what: string): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server did not answer "${what}" within 10 s`)),
        10_000,
      );
      this.pending.set(id, (v) => {
        clearTimeout(timer);
        resolve(v as T);
      });
      this.child.send({ id, what });
    });
  }

  /** Server CPU (user + system) so far, µs. */
  cpu(): Promise<number> {
    return this.ask<number>('cpu');
  }

  /** Collects garbage in the server (a no-op unless it runs with `--expose-gc`). */
  async gc(): Promise<void> {
    await this.ask('gc');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.send({ id: 0, what: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Starts a Redis, then `script` as a ServerProcess with `BENCH_REDIS_URL` (and `env`) set, runs `body`,
 * and stops both (the server first), whatever happens.
 */
export function withServer<T>(
  script: string,
  body: (server: ServerProcess) => Promise<T>,
  options: ServerOptions & { env?: Record<string, string> } = {},
): Promise<T> {
  return withRedis(async (redis) => {
    const server = await ServerProcess.start(script, { BENCH_REDIS_URL: redis.url, ...options.env }, options);
    try {
      return await body(server);
    } finally {
      await server.stop();
    }
  });
}

/** Runs autocannon with `options` and returns its result with the server's CPU time over the run, µs. */
export async function loadTest(
  server: ServerProcess,
  options: AutocannonOptions,
): Promise<{ result: AutocannonResult; cpuUs: number }> {
  const cpu0 = await server.cpu();
  const result = await autocannon(options);
  const cpuUs = (await server.cpu()) - cpu0;
  return { result, cpuUs };
}
