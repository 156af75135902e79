// The Nest application context the op-level cache benchmarks (cache-l1, cache-l2) measure: RedisClientModule
// as the redis-client bench configures it, and CacheModule with one profile per tier; and the setup both share.
import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { CacheService } from '@redwing/cache';
import type { Redis } from 'ioredis';
import { withRedis } from '../lib';
import { createContext } from '../lib/nest-context';
import { peerRedis, readyClient } from '../lib/redis-module';
import { oursCacheImports, VALUE } from './common';

/** Keys each side reads, round robin (so reads of one key rarely overlap). */
export const KEYS = 1_000;

/** Boots the context and waits until Redis is ready and invalidations are in sync. */
export async function cacheContext(
  url: string,
): Promise<{ app: INestApplicationContext; cache: CacheService }> {
  const app = await createContext(oursCacheImports(url));
  await readyClient(app);
  const cache = app.get(CacheService);
  const deadline = Date.now() + 5_000;
  while (!(await cache.stats({ redis: false })).invalidation.synced) {
    if (Date.now() > deadline) throw new Error('cache invalidation not in sync within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { app, cache };
}

/**
 * Starts Redis, the context and the peer (plain ioredis, the options RedisClientModule gives ioredis), writes
 * VALUE under KEYS keys on both sides (`v:<i>` through CacheService with `profile`, `peer:v:<i>` as JSON),
 * runs `body`, and closes everything.
 */
export function withFilledCache<T>(
  profile: 'l1' | 'l2',
  body: (sides: { cache: CacheService; peer: Redis; peerAutoPipelined: Redis }) => Promise<T>,
): Promise<T> {
  return withRedis(async (redis) => {
    const { app, cache } = await cacheContext(redis.url);
    const peer = peerRedis(redis);
    // The same peer with ioredis auto-pipelining (commands of one tick in one write), for the batched read.
    const peerAutoPipelined = peerRedis(redis, { enableAutoPipelining: true });
    try {
      await peer.connect();
      await peerAutoPipelined.connect();
      for (let i = 0; i < KEYS; i++) {
        await cache.set(`v:${i}`, VALUE, { profile });
        await peer.set(`peer:v:${i}`, JSON.stringify(VALUE));
      }
      return await body({ cache, peer, peerAutoPipelined });
    } finally {
      peer.disconnect();
      peerAutoPipelined.disconnect();
      await app.close();
    }
  });
}

type Counter = 'l1Hits' | 'l2Hits' | 'misses';

/** Runs `run` and returns its result with how much each of `counters` of the profile grew meanwhile. */
export async function countDuring<T>(
  cache: CacheService,
  profile: 'l1' | 'l2',
  counters: Counter[],
  run: () => Promise<T>,
): Promise<[T, Record<Counter, number>]> {
  const before = (await cache.stats({ redis: false })).profiles[profile];
  const result = await run();
  const after = (await cache.stats({ redis: false })).profiles[profile];
  const delta = Object.fromEntries(counters.map((k) => [k, after[k] - before[k]]));
  return [result, delta as Record<Counter, number>];
}
