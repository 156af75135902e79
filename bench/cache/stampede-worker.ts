// One process of the 4-process stampede benchmark: boots ours (RedisClientModule + CacheModule) and the peer
// (@nestjs/cache-manager with a keyv Redis store), says `ready`, and on each `{ run }` fires `concurrency`
// concurrent misses on one key through the chosen side. The loader INCRs a counter in Redis, so the parent
// counts loader calls across processes.
import 'reflect-metadata';
import KeyvRedis from '@keyv/redis';
import { Module } from '@nestjs/common';
import { CACHE_MANAGER, CacheModule as NestCacheModule } from '@nestjs/cache-manager';
import { NestFactory } from '@nestjs/core';
import { CacheModule, CacheService } from '@redwing/cache';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import type { Cache } from 'cache-manager';

/** What a run asks for. */
export interface StampedeRun {
  run: string;
  side: 'ours-lock' | 'ours' | 'peer-aside' | 'peer-wrap';
  key: string;
  concurrency: number;
  loaderMs: number;
}

async function main(): Promise<void> {
  const url = process.env.BENCH_REDIS_URL!;
  @Module({
    imports: [
      RedisClientModule.forRoot({ url, useEnv: false, commandTimeout: 2_000 }),
      CacheModule.forRoot({ ttl: 60_000 }),
      NestCacheModule.register({ stores: [new KeyvRedis(url)], ttl: 60_000 }),
    ],
  })
  class WorkerModule {}
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: ['error'] });
  const cache = app.get(CacheService);
  const peer = app.get<Cache>(CACHE_MANAGER);
  const redis = app.get(RedisClientManager).get().command;
  const deadline = Date.now() + 10_000;
  while (!(await cache.stats({ redis: false })).invalidation.synced) {
    if (Date.now() > deadline) throw new Error('cache invalidation not in sync within 10 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  const exit = () => void app.close().finally(() => process.exit(0));
  process.on('disconnect', exit);
  process.on('message', (m: StampedeRun | 'exit') => {
    if (m === 'exit') return exit();
    void (async () => {
      let calls = 0;
      const loader = async () => {
        calls++;
        await redis.incr(`stampede:${m.run}:calls`);
        await new Promise((r) => setTimeout(r, m.loaderMs));
        return { board: m.key, by: process.pid };
      };
      const one = (): Promise<unknown> => {
        switch (m.side) {
          case 'ours-lock':
            return cache.getOrSet(m.key, loader, { lock: { ttl: 5_000, wait: 5_000 } });
          case 'ours':
            return cache.getOrSet(m.key, loader);
          case 'peer-wrap':
            return peer.wrap(m.key, loader, 60_000);
          case 'peer-aside':
            return (async () => (await peer.get(m.key)) ?? peer.set(m.key, await loader(), 60_000))();
        }
      };
      const started = performance.now();
      const values = await Promise.all(Array.from({ length: m.concurrency }, one));
      process.send!({ run: m.run, calls, served: values.length, ms: performance.now() - started });
    })().catch((err: unknown) => process.send!({ run: m.run, error: String(err) }));
  });
  process.send!('ready');
}

main().catch((err: unknown) => {
  process.stderr.write(`stampede worker: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
