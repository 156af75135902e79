// stampede: 1,000 concurrent misses on one key, the loader takes 50 ms. Counts loader calls (the figure
// BENCH.md sets) and the time until all 1,000 callers have their value, for
//   ours-lock   CacheService.getOrSet with cross-instance single-flight (lease)
//   ours        CacheService.getOrSet, in-process single-flight only
//   peer-aside  @nestjs/cache-manager + keyv Redis used as its CacheInterceptor does: get, on a miss load and set
//   peer-wrap   cache-manager's wrap() (it coalesces in-process, which @nestjs/cache-manager's interceptor does not use)
// in one process, and in 4 processes (child processes on one Redis, each with its own 1,000 misses).
// Goal (BENCH.md): 1 loader call per process; 1 across 4 processes with distributed single-flight.
//
//   npm run bench -- stampede               (--rounds N repeats each measurement; default 5)
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { benchSettings, median, startRedis, type BenchRedis } from './lib';
import type { StampedeReply, StampedeRun } from './cache/stampede-worker';

const SCENARIO = 'stampede';
const CONCURRENCY = 1_000;
const LOADER_MS = 50;
const SIDES = ['ours-lock', 'ours', 'peer-aside', 'peer-wrap'] as const;
/** Loader calls BENCH.md allows, per side and layout (undefined: no goal, reported only). */
const GOALS: Record<string, number | undefined> = {
  'ours-lock@1': 1,
  'ours@1': 1,
  'ours-lock@4': 1,
  'ours@4': 4,
};

type Reply = StampedeReply;

async function startWorkers(redis: BenchRedis, n: number): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  await Promise.all(
    Array.from({ length: n }, () => {
      const child = fork(path.join(__dirname, 'cache', 'stampede-worker.ts'), [], {
        execArgv: ['--require', path.join(__dirname, 'register.js')],
        env: { ...process.env, STAMPEDE_REDIS_URL: redis.url, STAMPEDE_PEER: '1' },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      workers.push(child);
      process.once('exit', () => child.kill('SIGKILL'));
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('stampede worker not ready within 60 s')), 60_000);
        child.once('exit', (code) => reject(new Error(`stampede worker exited with ${code}`)));
        child.once('message', (m) => {
          clearTimeout(timer);
          if (m === 'ready') resolve();
          else reject(new Error(`unexpected message ${JSON.stringify(m)}`));
        });
      });
    }),
  );
  return workers;
}

async function runOn(workers: ChildProcess[], m: Omit<StampedeRun, 'run'>, run: string): Promise<Reply[]> {
  const replies = workers.map(
    (w) =>
      new Promise<Reply>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${run}: no answer within 30 s`)), 30_000);
        const on = (r: Reply) => {
          if (r.run !== run) return;
          clearTimeout(timer);
          w.off('message', on);
          if (r.error) reject(new Error(`${run}: ${r.error}`));
          else resolve(r);
        };
        w.on('message', on);
      }),
  );
  for (const w of workers) w.send({ ...m, run });
  return Promise.all(replies);
}

async function main(): Promise<void> {
  const settings = benchSettings();
  const started = Date.now();
  const redis = await startRedis();
  const workers = await startWorkers(redis, 4);
  const rows: Array<{ layout: string; side: string; calls: number[]; ms: number[]; goal?: number }> = [];
  try {
    for (const layout of [1, 4]) {
      const group = workers.slice(0, layout);
      for (const side of SIDES) {
        const calls: number[] = [];
        const ms: number[] = [];
        for (let round = 1; round <= settings.rounds; round++) {
          const run = `${side}-${layout}-${round}`;
          const replies = await runOn(
            group,
            { side, key: `stampede:${run}`, concurrency: CONCURRENCY, loaderMs: LOADER_MS },
            run,
          );
          const total = replies.reduce((n, r) => n + r.calls, 0);
          if (replies.some((r) => r.served !== CONCURRENCY))
            throw new Error(`${run}: not every caller got a value`);
          calls.push(total);
          ms.push(Math.max(...replies.map((r) => r.ms)));
          process.stdout.write(
            JSON.stringify({
              type: 'measurement',
              scenario: SCENARIO,
              variant: `${layout}-process`,
              round,
              side,
              processes: layout,
              callers: CONCURRENCY * layout,
              loaderCalls: total,
              perProcess: replies.map((r) => r.calls),
              ms: Math.round(Math.max(...replies.map((r) => r.ms))),
            }) + '\n',
          );
        }
        rows.push({
          layout: `${layout} process${layout > 1 ? 'es' : ''}`,
          side,
          calls,
          ms,
          goal: GOALS[`${side}@${layout}`],
        });
      }
    }
  } finally {
    for (const w of workers) w.send('exit');
    await new Promise((r) => setTimeout(r, 500));
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    await redis.stop();
  }
  const missed = rows.filter((r) => r.goal !== undefined && Math.max(...r.calls) > r.goal);
  const table = [
    `${SCENARIO}: ${CONCURRENCY} concurrent misses per process on one key, loader ${LOADER_MS} ms, ${settings.rounds} rounds; node ${process.version}`,
    '| layout | side | loader calls (median, max) | time to serve all, ms (median) | goal |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.layout} | ${r.side} | ${median(r.calls)} (max ${Math.max(...r.calls)}) | ${Math.round(median(r.ms))} | ${r.goal === undefined ? '' : `≤ ${r.goal} ${Math.max(...r.calls) <= r.goal ? 'met' : 'MISSED'}`} |`,
    ),
  ];
  for (const r of rows) {
    process.stdout.write(
      JSON.stringify({
        type: 'summary',
        scenario: SCENARIO,
        layout: r.layout,
        side: r.side,
        loaderCalls: { median: median(r.calls), max: Math.max(...r.calls) },
        msMedian: median(r.ms),
        goal: r.goal,
        meetsGoal: r.goal === undefined ? undefined : Math.max(...r.calls) <= r.goal,
      }) + '\n',
    );
  }
  process.stdout.write('\n' + table.join('\n') + '\n');
  if (missed.length) {
    process.stdout.write(
      `\n${SCENARIO}: goal missed by ${missed.map((r) => `${r.side} (${r.layout})`).join(', ')}\n`,
    );
    if (settings.strict) process.exitCode = 1;
  }
  process.stdout.write(`${SCENARIO}: done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(
      `${SCENARIO}: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(), 2_000).unref());
