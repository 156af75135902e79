// The lean hit path against a real redis-server: a hit (L1, or one Redis read) never enters the
// single-flight — it neither starts a flight nor counts as `coalesced` — while concurrent misses of one key
// still share one load; Redis reads asked for in one event-loop turn go out in one socket write; a read that
// overlaps an invalidation serves what it read without copying it into L1; and a request whose Redis budget
// is spent is not batched with others.
import { Controller, Get, Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { isRedisBudgetSpent, RedisClientModule, runWithRedisBudget } from '@redwing/redis';
import { CacheInterceptor, CacheModule, CacheService, Cacheable } from '@redwing/cache';
import { RedisServer, stopAll } from '../../../test/harness';
import { bootCache, countingLoader, redisOptions, request, waitFor, type CacheInstance } from './helpers';

afterAll(() => stopAll());

const PROFILES = { nol1: { l1: false as const }, withl1: {} };

/** Calls of one command since the server started (INFO commandstats). */
async function calls(server: RedisServer, command: string): Promise<number> {
  const info = String(await server.command('INFO', 'commandstats'));
  const line = info.split('\n').find((l) => l.startsWith(`cmdstat_${command}:`)) ?? '';
  const m = /calls=(\d+)/.exec(line);
  return m ? Number(m[1]) : 0;
}

describe('lean hits (CacheService)', () => {
  let server: RedisServer;
  let a: CacheInstance;
  let b: CacheInstance;
  let n = 0;
  const fresh = () => `lean:${++n}`;
  const counters = async (profile: string) => (await a.cache.stats({ redis: false })).profiles[profile];

  beforeAll(async () => {
    server = await RedisServer.start();
    // A 2 s command timeout (the harness default is 300 ms): these tests count reads, batches and L1 copies
    // with Redis up. A loaded CI run once saw every read of A come back empty in two tests in a row — what 50
    // reads timing out together and the breaker opening after them looks like.
    const redis = { commandTimeout: 2_000 };
    [a, b] = await Promise.all([
      bootCache({ url: server.url() }, { ttl: 60_000, profiles: PROFILES }, { redis }),
      bootCache({ url: server.url() }, { ttl: 60_000, profiles: PROFILES }, { redis }),
    ]);
  });
  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await server?.stop();
  });

  it('200 concurrent getOrSet of a key in Redis are 200 Redis hits: no loader call, none coalesced', async () => {
    const key = fresh();
    await a.cache.set(key, { v: 1 }, { profile: 'nol1' });
    const loader = countingLoader({ v: 2 });
    const before = await counters('nol1');
    const values = await Promise.all(
      Array.from({ length: 200 }, () => a.cache.resolve(key, loader.load, { profile: 'nol1' })),
    );
    const after = await counters('nol1');
    expect(values.every((r) => r.outcome === 'hit' && (r.value as { v: number }).v === 1)).toBe(true);
    expect(loader.calls()).toBe(0);
    expect(after.l2Hits - before.l2Hits).toBe(200);
    // The single-flight path shares one read between concurrent callers and counts the others as coalesced.
    expect(after.coalesced - before.coalesced).toBe(0);
    expect(after.misses - before.misses).toBe(0);
  });

  it('200 concurrent misses of one key still call the loader once (1 miss, 199 coalesced)', async () => {
    const key = fresh();
    const loader = countingLoader('loaded', 50);
    const before = await counters('nol1');
    const values = await Promise.all(
      Array.from({ length: 200 }, () => a.cache.getOrSet(key, loader.load, { profile: 'nol1' })),
    );
    const after = await counters('nol1');
    expect(values.every((v) => v === 'loaded')).toBe(true);
    expect(loader.calls()).toBe(1);
    expect(after.misses - before.misses).toBe(1);
    expect(after.coalesced - before.coalesced).toBe(199);
    expect(after.loads - before.loads).toBe(1);
  });

  it('a miss that arrives while the key loads joins that load', async () => {
    const key = fresh();
    const loader = countingLoader('once', 200);
    const first = a.cache.getOrSet(key, loader.load, { profile: 'nol1' });
    await waitFor('the load to start', 2_000, () => loader.calls() === 1);
    const later = await Promise.all(
      Array.from({ length: 20 }, () => a.cache.getOrSet(key, loader.load, { profile: 'nol1' })),
    );
    expect(await first).toBe('once');
    expect(later.every((v) => v === 'once')).toBe(true);
    expect(loader.calls()).toBe(1);
  });

  it('Redis reads asked for in one event-loop turn go out in one socket write, one GET per key', async () => {
    const keys = Array.from({ length: 50 }, () => fresh());
    await a.cache.mset(
      keys.map((key, i) => ({ key, value: i })),
      { profile: 'nol1' },
    );
    const socket = (a.manager.get().command as Redis).stream as unknown as Record<string, unknown>;
    const writes = { single: 0, vectored: 0 };
    const count = (name: '_write' | '_writev', what: 'single' | 'vectored') => {
      const original = socket[name] as (...args: unknown[]) => unknown;
      socket[name] = function (this: unknown, ...args: unknown[]) {
        writes[what]++;
        return original.apply(this, args);
      };
    };
    const [get0, mget0] = [await calls(server, 'get'), await calls(server, 'mget')];
    count('_write', 'single');
    count('_writev', 'vectored');
    let reading: Promise<unknown[]>;
    try {
      reading = Promise.all(keys.map((k) => a.cache.get(k, { profile: 'nol1' })));
      await new Promise((r) => setImmediate(r)); // the batch has been written
    } finally {
      delete socket._write;
      delete socket._writev;
    }
    expect(await reading).toEqual(keys.map((_, i) => i));
    expect(writes).toEqual({ single: 0, vectored: 1 });
    expect((await calls(server, 'get')) - get0).toBe(50);
    expect((await calls(server, 'mget')) - mget0).toBe(0);

    // Reads of one key share its GET: those of the same turn, and those asked for while it is in flight.
    const get1 = await calls(server, 'get');
    const first = Promise.all(Array.from({ length: 30 }, () => a.cache.get(keys[0], { profile: 'nol1' })));
    await new Promise((r) => setImmediate(r)); // the GET is sent, its reply not read yet
    const later = a.cache.get(keys[0], { profile: 'nol1' });
    expect((await first).every((v) => v === 0)).toBe(true);
    expect(await later).toBe(0);
    expect((await calls(server, 'get')) - get1).toBe(1);
  });

  it('a read that overlaps an invalidation serves what it read but leaves it out of L1', async () => {
    for (const via of ['get', 'getOrSet'] as const) {
      const key = fresh();
      // Written by B: in Redis, not in A's L1, so A's read goes to Redis.
      const received = (await a.cache.stats({ redis: false })).invalidation.received;
      await b.cache.set(key, 'old', { profile: 'withl1' });
      await waitFor(
        "B's invalidation message at A",
        2_000,
        async () => (await a.cache.stats({ redis: false })).invalidation.received > received,
      );
      expect(a.cache.peek(key, { profile: 'withl1' })).toBeUndefined();
      const loader = countingLoader('loaded');
      const reading =
        via === 'get'
          ? a.cache.get(key, { profile: 'withl1' })
          : a.cache.getOrSet(key, loader.load, { profile: 'withl1' });
      // The read goes out when this turn ends; the deletion after it, so the read still finds 'old'.
      await new Promise((r) => setImmediate(r));
      const deleting = a.cache.del(key, { profile: 'withl1' });
      // Asked for after the deletion: must not share the reply of the read sent before it.
      const afterDelete = a.cache.get(key, { profile: 'withl1' });
      expect(await reading).toBe('old');
      expect(await deleting).toBe(1);
      expect(await afterDelete).toBeUndefined();
      // Copying 'old' into L1 now would serve a deleted entry for as long as L1 keeps it.
      expect(a.cache.peek(key, { profile: 'withl1' })).toBeUndefined();
      expect(await a.cache.get(key, { profile: 'withl1' })).toBeUndefined();
      expect(loader.calls()).toBe(0);
    }
  });
});

describe('lean hits and the request budget', () => {
  let server: RedisServer;
  let a: CacheInstance;

  beforeAll(async () => {
    server = await RedisServer.start();
    // No breaker and no health check: every refusal here is the request budget's doing.
    a = await bootCache(
      { url: server.url() },
      { ttl: 60_000, profiles: PROFILES },
      { redis: { commandTimeout: 300, breaker: { enabled: false }, healthCheck: { interval: 0 } } },
    );
  });
  afterAll(async () => {
    if (server?.isPaused) server.resume();
    await a?.module.close();
    await server?.stop();
  });

  it("a batched read spends its request's budget; a request with a spent budget does not join another's read", async () => {
    const nol1 = { profile: 'nol1' };
    await a.cache.set('b:2', 'board', nol1);
    server.pause();
    const seen = await runWithRedisBudget(async () => {
      const first = await a.cache.get('absent', nol1); // times out: this request's one Redis wait
      const spent = isRedisBudgetSpent();
      // Another request reads b:2; its GET is sent (Redis is stopped) before this one asks for the same key.
      const other = runWithRedisBudget(() => a.cache.get('b:2', nol1));
      await new Promise((r) => setImmediate(r));
      server.resume();
      const mine = await a.cache.get('b:2', nol1); // refused at once: a miss, not the other request's reply
      return { first, spent, mine, other: await other };
    });
    expect(seen).toEqual({ first: undefined, spent: true, mine: undefined, other: 'board' });
  });
});

@Controller()
class LeanController {
  calls = 0;

  @Get('board')
  @Cacheable({ profile: 'nol1', tags: ['board'] })
  board() {
    this.calls++;
    return { id: 1, name: 'Board 1' };
  }
}

describe('lean hits (CacheInterceptor, Fastify)', () => {
  let server: RedisServer;
  let app: NestFastifyApplication;
  let base: string;
  let cache: CacheService;
  let controller: LeanController;

  beforeAll(async () => {
    server = await RedisServer.start();
    @Module({
      imports: [
        RedisClientModule.forRoot(redisOptions({ url: server.url() }, { commandTimeout: 2_000 })),
        CacheModule.forRoot({ ttl: 60_000, profiles: PROFILES }),
      ],
      controllers: [LeanController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: CacheInterceptor }],
    })
    class LeanModule {}
    const module = await Test.createTestingModule({ imports: [LeanModule] }).compile();
    app = module.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
    cache = app.get(CacheService);
    controller = app.get(LeanController);
    await waitFor(
      'cache sync',
      10_000,
      async () => (await cache.stats({ redis: false })).invalidation.synced,
    );
  });
  afterAll(async () => {
    await app?.close();
    await server?.stop();
  });

  it('concurrent requests for a route entry in Redis are all Redis hits, none coalesced', async () => {
    expect((await request(`${base}/board`)).headers['x-cache']).toBe('MISS');
    expect(controller.calls).toBe(1);
    const before = (await cache.stats({ redis: false })).profiles.nol1;
    // Hold Redis for a moment so that every request is waiting on its read at once.
    await server.command('CLIENT', 'PAUSE', '300', 'ALL');
    const responses = await Promise.all(Array.from({ length: 20 }, () => request(`${base}/board`)));
    const after = (await cache.stats({ redis: false })).profiles.nol1;
    expect(responses.map((r) => r.headers['x-cache'])).toEqual(Array(20).fill('HIT'));
    expect(responses.every((r) => r.body.name === 'Board 1')).toBe(true);
    expect(controller.calls).toBe(1);
    expect(after.l2Hits - before.l2Hits).toBe(20);
    expect(after.coalesced - before.coalesced).toBe(0);
  });

  it('concurrent requests after an invalidation run the handler once', async () => {
    await cache.invalidateTags(['board']);
    const calls = controller.calls;
    const responses = await Promise.all(Array.from({ length: 20 }, () => request(`${base}/board`)));
    expect(controller.calls - calls).toBe(1);
    expect(responses.filter((r) => r.headers['x-cache'] === 'MISS').length).toBeGreaterThanOrEqual(1);
    expect(responses.every((r) => r.status === 200 && r.body.name === 'Board 1')).toBe(true);
  });
});
