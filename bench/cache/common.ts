// What the cache benchmarks share: the value they cache, and our side's module setup.
import { CacheModule } from '@redwing/cache';
import { benchRedisModule } from '../lib/redis-module';

/** How long everything is cached: 10 minutes, so after the warm-up every read is a hit. */
export const TTL = 600_000;

/** A ~300-byte JSON value (about a small board summary), the same on both sides. */
export const VALUE = {
  id: 1,
  name: 'Board 1',
  columns: ['todo', 'doing', 'done'],
  cards: [1, 2, 3, 4, 5].map((i) => ({ id: i, title: `Card number ${i}`, column: 'todo' })),
};

/**
 * Ours: RedisClientModule as the benches run it, and CacheModule with one profile per tier (`l1`, `l2`: L1
 * off). `BENCH_CACHE_AUTOPIPELINING=1` (diagnostic) gives the connection ioredis `enableAutoPipelining`
 * through RedisClientModule's `redisOptions`.
 */
export function oursCacheImports(url: string) {
  const autoPipelining = process.env.BENCH_CACHE_AUTOPIPELINING === '1';
  return [
    benchRedisModule(url, autoPipelining ? { redisOptions: { enableAutoPipelining: true } } : {}),
    CacheModule.forRoot({ ttl: TTL, profiles: { l1: {}, l2: { l1: false } } }),
  ];
}
