// One process of a cross-process stampede, shared by the stampede benchmark (bench/stampede.bench.ts, 4
// processes, ours vs the peer) and the cache's reliability test (libs/cache/test/stampede.int-spec.ts).
// Boots ours (RedisClientModule + CacheModule) — and, with STAMPEDE_PEER=1, the peer
// (@nestjs/cache-manager with a keyv Redis store) — says `ready`, and on each `{ run }` fires `concurrency`
// concurrent misses on one key through the chosen side. The loader INCRs `stampede:<run>:calls` in Redis,
// so the parent counts loader calls across processes. Exits on `exit` (or when the parent goes away),
// closing the Nest context.
//
// Env: STAMPEDE_REDIS_URL (required), STAMPEDE_PEER=1 to boot the peer. Load with
// `--require bench/register.js` (tests set REDWING_BENCH_LIBS=src to run the lib sources).
import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CacheModule, CacheService } from '@redwing/cache';
import { RedisClientManager, RedisClientModule } from '@redwing/redis';
import type { Cache } from 'cache-manager';

/** Which cache serves the misses: ours with or without the cross-instance lease, or the peer. */
export type StampedeSide = 'ours-lock' | 'ours' | 'peer-aside' | 'peer-wrap';

/** What a run asks for. */
export interface StampedeRun {
  run: string;
  side: StampedeSide;
  key: string;
  concurrency: number;
  loaderMs: number;
}

/** What a worker answers to a run. */
export interface StampedeReply {
  run: string;
  /** Loader calls in this process. */
  calls: number;
  /** Callers that got a value. */
  served: number;
  /** Distinct producers (process ids) among the values served. */
  distinct: number;
  /** Time until every caller had its value, ms. */
  ms: number;
  error?: string;
}

async function main(): Promise<void> {
  const url = process.env.STAMPEDE_REDIS_URL;
  if (!url) throw new Error('STAMPEDE_REDIS_URL is not set');
  const withPeer = process.env.STAMPEDE_PEER === '1';
  // The peer is loaded only when asked for: the cache test forks 4 workers at once and needs ours only.
  const peerLib = withPeer
    ? {
        keyv: require('@keyv/redis') as typeof import('@keyv/redis'),
        nest: require('@nestjs/cache-manager') as typeof import('@nestjs/cache-manager'),
      }
    : undefined;
  const peerModules: DynamicModule[] = peerLib
    ? [peerLib.nest.CacheModule.register({ stores: [new peerLib.keyv.default(url)], ttl: 60_000 })]
    : [];
  @Module({
    imports: [
      RedisClientModule.forRoot({ url, useEnv: false, commandTimeout: 2_000 }),
      CacheModule.forRoot({ ttl: 60_000, lock: false }),
      ...peerModules,
    ],
  })
  class WorkerModule {}
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: ['error'] });
  const cache = app.get(CacheService);
  const peer = peerLib ? app.get<Cache>(peerLib.nest.CACHE_MANAGER) : undefined;
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
        return { key: m.key, by: process.pid };
      };
      const needPeer = (): Cache => {
        if (!peer) throw new Error(`side ${m.side} needs STAMPEDE_PEER=1`);
        return peer;
      };
      const one = async (): Promise<{ by: number } | undefined> => {
        switch (m.side) {
          case 'ours-lock':
            return cache.getOrSet(m.key, loader, { lock: { ttl: 5_000, wait: 5_000 } });
          case 'ours':
            return cache.getOrSet(m.key, loader, { lock: false });
          case 'peer-wrap':
            return needPeer().wrap(m.key, loader, 60_000);
          case 'peer-aside': {
            const found = await needPeer().get<{ by: number }>(m.key);
            return found ?? needPeer().set(m.key, await loader(), 60_000);
          }
        }
      };
      const started = performance.now();
      const values = await Promise.all(Array.from({ length: m.concurrency }, one));
      const reply: StampedeReply = {
        run: m.run,
        calls,
        served: values.length,
        distinct: new Set(values.map((v) => v?.by)).size,
        ms: performance.now() - started,
      };
      process.send!(reply);
    })().catch((err: unknown) => process.send!({ run: m.run, error: String(err) }));
  });
  process.send!('ready');
}

main().catch((err: unknown) => {
  process.stderr.write(`stampede worker: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
