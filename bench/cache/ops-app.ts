// The Nest application context the op-level cache benchmarks (cache-l1, cache-l2) measure: RedisClientModule
// as the redis-client bench configures it, and CacheModule with one profile per tier.
import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CacheModule, CacheService } from '@redwing/cache';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';

/** Options every peer connection of these benchmarks uses: the ones RedisClientModule gives ioredis. */
export const PEER_OPTIONS = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  commandTimeout: 1_000,
  maxRetriesPerRequest: null,
} as const;

/** Boots the context and waits until Redis is ready and invalidations are in sync. */
export async function cacheContext(
  url: string,
): Promise<{ app: INestApplicationContext; cache: CacheService }> {
  @Module({
    imports: [
      RedisClientModule.forRoot({
        url,
        useEnv: false,
        commandTimeout: 1_000,
        healthCheck: { interval: 2_000 },
      }),
      CacheModule.forRoot({ ttl: 600_000, profiles: { l1: {}, l2: { l1: false } } }),
    ],
  })
  class BenchCacheModule {}
  const app = await NestFactory.createApplicationContext(BenchCacheModule, { logger: ['error', 'warn'] });
  if (!(await app.get(RedisClientManager).get().waitUntilReady(5_000)))
    throw new Error('Redis not ready within 5 s');
  const cache = app.get(CacheService);
  const deadline = Date.now() + 5_000;
  while (!(await cache.stats({ redis: false })).invalidation.synced) {
    if (Date.now() > deadline) throw new Error('cache invalidation not in sync within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { app, cache };
}

/** A ~300-byte JSON value, the same on both sides. */
export const VALUE = {
  id: 1,
  name: 'Board 1',
  columns: ['todo', 'doing', 'done'],
  cards: [1, 2, 3, 4, 5].map((i) => ({ id: i, title: `Card number ${i}`, column: 'todo' })),
};
