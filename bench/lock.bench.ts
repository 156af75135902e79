// lock: acquire + release of distinct resources (never contended), 50 pairs in flight, fencing on (every
// grant issues its token) — LockService (breaker on, metrics registry present) vs raw redlock with its default
// settings on a plain ioredis client with the same connection options. Goal (BENCH.md): ≥ 0.9×.
//
//   npm run bench -- lock                        (5 rounds × 3 s per side, 1 s warm-up)
//   npm run bench -- lock --rounds 3 --ms 2000
import 'reflect-metadata';
import Redlock from 'redlock';
import { benchVariants, compare } from './lib';
import type { BenchRedis, BenchSettings, ComparisonSummary } from './lib';
import { peerRedis } from './lib/redis-module';
import { lockContext } from './lock/lock-context';

const SCENARIO = 'lock';
const CONCURRENCY = 50;
const RESOURCES = 100_000;
const TTL = 10_000;

interface Variant {
  name: string;
  description: string;
  goal?: number;
}

const VARIANTS: Variant[] = [
  {
    name: 'distinct-c50',
    description: 'acquire + release, distinct resources, 50 in flight, fencing on; peer: redlock defaults',
    goal: 0.9,
  },
];

async function runVariant(
  redis: BenchRedis,
  v: Variant,
  settings: BenchSettings,
): Promise<ComparisonSummary> {
  const { app, locks } = await lockContext(redis);
  const peerClient = peerRedis(redis);
  try {
    await peerClient.connect();
    const redlock = new Redlock([peerClient]);
    let a = 0;
    let b = 0;
    const first = await locks.acquire('bench:check', { ttl: TTL, wait: 0 });
    const second = await locks.acquire('bench:check', { ttl: TTL, wait: 1_000 }).catch((e: Error) => e);
    if (!(second instanceof Error)) throw new Error('warm check failed: a held lock was granted twice');
    await locks.release(first);
    return await compare({
      scenario: SCENARIO,
      variant: v.name,
      description: v.description,
      concurrency: CONCURRENCY,
      goal: v.goal,
      settings,
      ours: {
        label: 'LockService.acquire+release',
        op: async () => {
          const lock = await locks.acquire(`bench:${a++ % RESOURCES}`, { ttl: TTL, wait: 0 });
          if (!(lock.fence > 0)) throw new Error('no fence');
          await locks.release(lock);
        },
      },
      peer: {
        label: 'redlock.acquire+release',
        op: async () => {
          const lock = await redlock.acquire([`bench-peer:${b++ % RESOURCES}`], TTL);
          await lock.release();
        },
      },
    });
  } finally {
    peerClient.disconnect();
    await app.close();
  }
}

benchVariants(SCENARIO, VARIANTS, runVariant);
