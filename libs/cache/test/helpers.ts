import * as http from 'node:http';
import type { ModuleMetadata } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { RedisClientManager, RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import { CacheModule, CacheService, type CacheModuleOptions } from '@redwing/cache';
import { sleep, waitFor } from '../../../test/harness';

export { fastRedisOptions, sleep, waitFor } from '../../../test/harness';

/** One "instance": a Nest context with RedisClientModule + CacheModule (and extra providers). */
export interface CacheInstance {
  module: TestingModule;
  cache: CacheService;
  manager: RedisClientManager;
}

import { redisOptions, type Topology } from '../../../test/nest-testing';

export { redisOptions, type Topology };

/** Boots an instance, waits until its client is ready and its invalidation subscriber is in sync. */
export async function bootCache(
  topology: Topology,
  options: CacheModuleOptions = {},
  more: { redis?: Partial<RedisClientModuleOptions>; metadata?: ModuleMetadata; waitReady?: boolean } = {},
): Promise<CacheInstance> {
  const module = await Test.createTestingModule({
    imports: [
      RedisClientModule.forRoot(redisOptions(topology, more.redis)),
      CacheModule.forRoot(options),
      ...(more.metadata?.imports ?? []),
    ],
    providers: more.metadata?.providers ?? [],
    controllers: more.metadata?.controllers ?? [],
  }).compile();
  await module.init();
  const cache = module.get(CacheService);
  const manager = module.get(RedisClientManager);
  if (more.waitReady !== false) {
    const client = manager.get(options.client);
    if (!(await client.waitUntilReady(10_000))) throw new Error('Redis client not ready within 10 s');
    await waitFor(
      'invalidation sync',
      10_000,
      async () => (await cache.stats({ redis: false })).invalidation.synced || options.invalidation === false,
    );
  }
  return { module, cache, manager };
}

/** A loader that counts its calls and resolves after `ms`. */
export function countingLoader<T>(
  value: T | (() => T),
  ms = 0,
): { load: () => Promise<T>; calls: () => number } {
  let calls = 0;
  return {
    calls: () => calls,
    load: async () => {
      calls++;
      if (ms > 0) await sleep(ms);
      return typeof value === 'function' ? (value as () => T)() : value;
    },
  };
}

/** p-th percentile (0–100) of a list of numbers. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** A response as {@link request} returns it. */
export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON, or undefined when the body is not JSON. */
  body: any;
}

/**
 * One HTTP request with exactly the headers given: fetch() adds `Cache-Control: no-cache` to any request
 * with `If-None-Match` (the Fetch standard says so), which would turn every conditional request into a
 * revalidation. New connection per request, 10 s timeout.
 */
export function request(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: init.method ?? 'GET', headers: init.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${url}: no response within 10 s`)));
    req.on('error', reject);
    req.end(init.body);
  });
}
