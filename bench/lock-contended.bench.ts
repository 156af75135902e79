// lock-contended: 50 workers loop acquire → release on ONE resource — LockService (waiters woken by the
// release, one FIFO per process, hand-over in one round trip) vs raw redlock with its default retries
// (10 × 200 ms ± 100 ms, then it gives up). Reports pairs/s, p99 wait and give-ups per side.
// Goal (BENCH.md): ≥ 2× pairs/s, p99 wait ≤ 1/4 of the peer's, 0 give-ups.
//
//   npm run bench -- lock-contended                        (5 rounds × 3 s per side, 1 s warm-up)
//   npm run bench -- lock-contended --rounds 3 --ms 2000
import 'reflect-metadata';
import Redlock, { type Lock as RedlockLock } from 'redlock';
import type { Lock } from '@redwing/lock';
import { benchMain, printJsonLine, round2, runComparison, spread, withRedis } from './lib';
import type { BenchSettings, ComparisonSummary } from './lib';
import { peerRedis } from './lib/redis-module';
import { runContended, type ContendedRun } from './lock/contended-run';
import { lockContext } from './lock/lock-context';

const SCENARIO = 'lock-contended';
const CONCURRENCY = 50;
const TTL = 10_000;
/** Ours waits as long as it takes (bounded): the goal is no give-ups, every wait is measured. */
const OURS_WAIT = 30_000;

async function run(settings: BenchSettings): Promise<ComparisonSummary[]> {
  return withRedis(async (redis) => {
    const { app, locks } = await lockContext(redis);
    const peerClient = peerRedis(redis);
    try {
      await peerClient.connect();
      const redlock = new Redlock([peerClient]);
      const sides = {
        ours: {
          label: 'LockService.acquire (wait 30 s) + release',
          run: (ms: number) =>
            runContended({
              ms,
              concurrency: CONCURRENCY,
              acquire: () => locks.acquire('bench:contended', { ttl: TTL, wait: OURS_WAIT }),
              release: (lock) => locks.release(lock as Lock),
            }),
        },
        peer: {
          label: 'redlock.acquire (default retries) + release',
          run: (ms: number) =>
            runContended({
              ms,
              concurrency: CONCURRENCY,
              acquire: () => redlock.acquire(['bench-peer:contended'], TTL),
              release: (lock) => (lock as RedlockLock).release(),
            }),
        },
      };
      const { runs, summary } = await runComparison<ContendedRun>({
        scenario: SCENARIO,
        variant: 'one-resource-c50',
        description: 'acquire + release on one resource, 50 workers; peer: redlock default retries',
        concurrency: CONCURRENCY,
        goal: 2,
        settings,
        sides,
        warmUp: (side) => sides[side].run(settings.warmupMs),
        measure: (side) => sides[side].run(settings.ms),
        fields: (r) => ({
          ms: Math.round(r.elapsedMs),
          pairs: r.pairs,
          pairsPerSec: Math.round(r.pairsPerSec),
          giveUps: r.giveUps,
          p50WaitMs: round2(r.p50Wait),
          p99WaitMs: round2(r.p99Wait),
          maxWaitMs: round2(r.maxWait),
          cpuUsPerPair: round2(r.cpuUsPerPair),
          ...(r.firstError ? { firstError: r.firstError } : {}),
        }),
        opsPerSec: (r) => r.pairsPerSec,
        cpuUsPerOp: (r) => r.cpuUsPerPair,
        errors: (r) => r.giveUps,
      });
      const p99Ratio = spread(runs.ours.map((o, i) => o.p99Wait / runs.peer[i].p99Wait));
      const giveUps = { ours: summary.ours.errors, peer: summary.peer.errors };
      const goals = {
        pairsPerSec: summary.ratio.median >= 2,
        p99Wait: p99Ratio.median <= 0.25,
        noGiveUps: giveUps.ours === 0,
      };
      summary.meetsGoal = goals.pairsPerSec && goals.p99Wait && goals.noGiveUps;
      printJsonLine({
        type: 'contended',
        scenario: SCENARIO,
        p99WaitMs: {
          ours: spread(runs.ours.map((r) => r.p99Wait)),
          peer: spread(runs.peer.map((r) => r.p99Wait)),
        },
        p99Ratio,
        giveUps,
        goals,
      });
      printJsonLine(summary);
      process.stdout.write(
        `\n${SCENARIO}: p99 wait ours/peer ${p99Ratio.median.toFixed(3)}× (goal ≤ 0.25×), give-ups ours ${giveUps.ours}, ` +
          `peer ${giveUps.peer} (goal: ours 0)\n`,
      );
      return [summary];
    } finally {
      peerClient.disconnect();
      await app.close();
    }
  });
}

benchMain(SCENARIO, run);
