// Our Redis client and the peer's, configured alike, for the benches that compare against raw ioredis or
// boot RedisClientModule. Not re-exported by index.ts: it loads @redwing/redis.
import type { INestApplicationContext } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import {
  RedisClientManager,
  RedisClientModule,
  type ManagedRedisClient,
  type RedisClientModuleOptions,
} from '@redwing/redis';
import type { BenchRedis } from './redis-server';

export const COMMAND_TIMEOUT = 1_000;

/** The options RedisClientModule gives ioredis for the command connection; every peer client uses the same. */
export const PEER_REDIS_OPTIONS = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  commandTimeout: COMMAND_TIMEOUT,
  maxRetriesPerRequest: null,
} satisfies RedisOptions;

/**
 * RedisClientModule as the benches run ours: `url` only (no REDIS_* env), a 1 s command timeout, a health
 * check every 2 s, plus `options` (e.g. `breaker`, `redisOptions`).
 */
export function benchRedisModule(url: string, options: RedisClientModuleOptions = {}) {
  return RedisClientModule.forRoot({
    url,
    useEnv: false,
    commandTimeout: COMMAND_TIMEOUT,
    healthCheck: { interval: 2_000 },
    ...options,
  });
}

/** The peer: a plain ioredis client (lazyConnect) with PEER_REDIS_OPTIONS and `options`. */
export function peerRedis(redis: BenchRedis, options: RedisOptions = {}): Redis {
  return new Redis({
    host: redis.host,
    port: redis.port,
    lazyConnect: true,
    ...PEER_REDIS_OPTIONS,
    ...options,
  });
}

/** The app's default client, once it is ready (throws after 5 s). */
export async function readyClient(app: INestApplicationContext): Promise<ManagedRedisClient> {
  const client = app.get(RedisClientManager).get();
  if (!(await client.waitUntilReady(5_000))) throw new Error('Redis not ready within 5 s');
  return client;
}
