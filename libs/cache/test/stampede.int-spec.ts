// RELIABILITY.md, "stampede": 1,000 concurrent misses on one key in each of 4 processes (child processes,
// each with its own Nest context and connections, like 4 gateway instances). In-process single-flight
// alone gives at most 1 loader call per process; with the cross-instance lease, 1 call in total.
// (The one-process figure, 1,000 misses → 1 call, is in cache.int-spec.ts on both topologies.)
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { StampedeReply as Result } from '../../../bench/cache/stampede-worker';
import { RedisServer, stopAll } from '../../../test/harness';

const WORKERS = 4;
const CONCURRENCY = 1_000;
// The stampede benchmark's worker (ours only here: no STAMPEDE_PEER), run on the lib sources.
const ROOT = path.resolve(__dirname, '../../..');
const WORKER = path.join(ROOT, 'bench/cache/stampede-worker.ts');
const REGISTER = path.join(ROOT, 'bench/register.js');

describe('stampede across 4 processes', () => {
  let server: RedisServer;
  const workers: ChildProcess[] = [];
  const results = new Map<string, Result[]>();

  beforeAll(async () => {
    server = await RedisServer.start();
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < WORKERS; i++) {
      const child = fork(WORKER, [], {
        execArgv: ['--require', REGISTER],
        env: { ...process.env, STAMPEDE_REDIS_URL: server.url(), REDWING_BENCH_LIBS: 'src' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      workers.push(child);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`worker ${child.pid} not ready within 30 s`)),
            30_000,
          );
          child.on('message', (m: Result | 'ready') => {
            if (m === 'ready') {
              clearTimeout(timer);
              resolve();
            } else {
              const list = results.get(m.run) ?? [];
              list.push(m);
              results.set(m.run, list);
            }
          });
          child.once('exit', (code) => reject(new Error(`worker ${child.pid} exited with ${code}`)));
        }),
      );
    }
    await Promise.all(ready);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(
      workers.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => {
              child.kill('SIGKILL');
              resolve();
            }, 5_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.send('exit');
          }),
      ),
    );
    await server?.stop();
    await stopAll();
  });

  /** Sends the same run to every worker at once and waits for all answers. */
  async function runEverywhere(run: string, lock: boolean, loaderMs: number): Promise<Result[]> {
    const side = lock ? 'ours-lock' : 'ours';
    for (const w of workers)
      w.send({ run, side, key: `stampede:${run}`, concurrency: CONCURRENCY, loaderMs });
    const deadline = Date.now() + 20_000;
    while ((results.get(run)?.length ?? 0) < WORKERS) {
      if (Date.now() > deadline)
        throw new Error(`run ${run}: ${results.get(run)?.length ?? 0}/${WORKERS} answered in 20 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const out = results.get(run)!;
    for (const r of out) expect(r.error).toBeUndefined();
    return out;
  }

  it('without the lease: at most 1 loader call per process (4,000 misses)', async () => {
    // A loader slower than any start-up skew, so every process misses before any has stored the value.
    const out = await runEverywhere('no-lock', false, 300);
    expect(out.map((r) => r.served)).toEqual([CONCURRENCY, CONCURRENCY, CONCURRENCY, CONCURRENCY]);
    expect(out.every((r) => r.calls <= 1)).toBe(true);
    const total = Number(await server.command('GET', 'stampede:no-lock:calls'));
    expect(total).toBe(out.reduce((n, r) => n + r.calls, 0));
    expect(total).toBeGreaterThanOrEqual(2); // the processes really raced (else the next test proves nothing)
    expect(total).toBeLessThanOrEqual(WORKERS);
  });

  it('with cross-instance single-flight: 1 loader call in total, and every process gets that value', async () => {
    const out = await runEverywhere('lock', true, 50);
    expect(out.map((r) => r.served)).toEqual([CONCURRENCY, CONCURRENCY, CONCURRENCY, CONCURRENCY]);
    expect(Number(await server.command('GET', 'stampede:lock:calls'))).toBe(1);
    expect(out.reduce((n, r) => n + r.calls, 0)).toBe(1);
    expect(out.every((r) => r.distinct === 1)).toBe(true);
    expect(await server.command('EXISTS', 'redwing:cache:~lease:default:stampede:lock')).toBe(0);
  });
});
