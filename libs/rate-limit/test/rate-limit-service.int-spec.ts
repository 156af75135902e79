// RateLimitService against real Redis, on a standalone server and on a 3-master Cluster: the three
// algorithms, several limits at once, get/reward/penalty/block/delete, named policies, and TTLs on every key.
import type { RedisClientModuleOptions, RedisConnection } from '@redwing/redis';
import type { RateLimitAlgorithm, RateLimitLimit } from '@redwing/rate-limit';
import { RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { bootService, counterValue, sleep, type Booted } from './helpers';

afterAll(() => stopAll());

const ALGORITHMS: RateLimitAlgorithm[] = ['fixed-window', 'sliding-window', 'token-bucket'];

/** Every key of the limiter, on every master of a Cluster. */
async function limiterKeys(conn: RedisConnection): Promise<string[]> {
  const nodes = 'nodes' in conn ? conn.nodes('master') : [conn];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    for (let i = 0; i < 1_000; i++) {
      const [next, batch] = await node.scan(cursor, 'MATCH', 'redwing:ratelimit:*', 'COUNT', 1_000);
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
  }
  return keys;
}

describe.each(['standalone', 'cluster'] as const)('RateLimitService on %s', (topology) => {
  let booted: Booted;
  let conn: RedisConnection;
  let n = 0;
  const key = () => `user:${topology}-${++n}`;

  beforeAll(async () => {
    let redis: RedisClientModuleOptions;
    if (topology === 'cluster') {
      const cluster = await RedisCluster.start();
      redis = { cluster: { nodes: cluster.seeds() } };
    } else {
      const server = await RedisServer.start();
      redis = { url: server.url() };
    }
    booted = await bootService(redis, {
      points: 3,
      duration: 10_000,
      policies: {
        login: { points: 2, duration: 60_000, algorithm: 'sliding-window' },
        pair: [
          { points: 2, duration: 1_000, algorithm: 'token-bucket' },
          { points: 5, duration: 60_000 },
        ],
      },
    });
    conn = booted.manager.get().command;
  }, 60_000);

  afterAll(() => booted?.module.close());

  describe.each(ALGORITHMS)('%s', (algorithm) => {
    const limits: RateLimitLimit = { name: `alg-${algorithm}`, algorithm, points: 3, duration: 10_000 };

    it('admits exactly `points`, then refuses with a retry time within the window', async () => {
      const k = key();
      const decisions = [];
      for (let i = 0; i < 5; i++) decisions.push(await booted.service.consume(k, { limits }));
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
      expect(decisions.slice(0, 3).map((d) => d.limits[0].remaining)).toEqual([2, 1, 0]);
      for (const d of decisions.slice(3)) {
        expect(d.mode).toBe('redis');
        expect(d.retryAfter).toBeGreaterThan(0);
        expect(d.retryAfter).toBeLessThanOrEqual(10_000);
        expect(d.limits[0]).toMatchObject({ allowed: false, remaining: 0, points: 3, duration: 10_000 });
      }
    });

    it('writes only keys with a TTL no longer than the window', async () => {
      const k = key();
      await booted.service.consume(k, { limits });
      const keys = (await limiterKeys(conn)).filter((x) => x.includes(`alg-${algorithm}`) && x.includes(k));
      expect(keys).toHaveLength(1);
      const ttl = await conn.pttl(keys[0]);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(10_000);
      expect(keys[0]).toBe(
        `redwing:ratelimit:${{ 'fixed-window': 'fw', 'sliding-window': 'sw', 'token-bucket': 'tb' }[algorithm]}:alg-${algorithm}:3:10000:{${k}}`,
      );
    });

    it('get() reads without counting; penalty() and reward() move the count', async () => {
      const k = key();
      expect((await booted.service.get(k, { limits })).limits[0]).toMatchObject({
        allowed: true,
        remaining: 3,
      });
      expect((await booted.service.get(k, { limits })).limits[0].remaining).toBe(3);
      await booted.service.consume(k, { limits });
      expect((await booted.service.penalty(k, 2, { limits })).limits[0].remaining).toBe(0);
      const full = await booted.service.get(k, { limits });
      expect(full.allowed).toBe(false);
      expect(full.retryAfter).toBeGreaterThan(0);
      expect((await booted.service.get(k, { limits })).limits[0].remaining).toBe(0);
      expect((await booted.service.reward(k, 2, { limits })).limits[0].remaining).toBe(2);
      expect((await booted.service.consume(k, { limits })).allowed).toBe(true);
    });

    it('block() refuses for the duration; delete() forgets the count and lifts the block', async () => {
      const k = key();
      await booted.service.consume(k, { limits });
      await booted.service.block(k, 5_000, { limits });
      const blocked = await booted.service.consume(k, { limits });
      expect(blocked.allowed).toBe(false);
      expect(blocked.retryAfter).toBeGreaterThan(3_000);
      expect(blocked.retryAfter).toBeLessThanOrEqual(5_000);
      expect(await booted.service.delete(k, { limits })).toBe(true);
      const after = await booted.service.consume(k, { limits });
      expect(after.allowed).toBe(true);
      expect(after.limits[0].remaining).toBe(2);
      expect(await booted.service.delete(`${k}-never-seen`, { limits })).toBe(false);
    });

    it('blocks for blockDuration once a client goes over the limit', async () => {
      const k = key();
      const blocking = { ...limits, name: `blk-${algorithm}`, points: 1, blockDuration: 4_000 };
      expect((await booted.service.consume(k, { limits: blocking })).allowed).toBe(true);
      const refused = await booted.service.consume(k, { limits: blocking });
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfter).toBeGreaterThan(3_000);
      expect(refused.retryAfter).toBeLessThanOrEqual(10_000);
    });

    it('counts `cost` points per call', async () => {
      const k = key();
      expect((await booted.service.consume(k, { limits, cost: 2 })).limits[0].remaining).toBe(1);
      expect((await booted.service.consume(k, { limits, cost: 2 })).allowed).toBe(false);
      // rate-limiter-flexible's fixed window counts refused requests too (INCRBY first, compare after);
      // the sliding window and the token bucket count only what they admit.
      expect((await booted.service.consume(k, { limits, cost: 1 })).allowed).toBe(
        algorithm !== 'fixed-window',
      );
    });
  });

  it('applies several limits at once: refused when any is exhausted, with the longest retry', async () => {
    const k = key();
    const burst = { name: 'multi-burst', algorithm: 'sliding-window' as const, points: 2, duration: 1_000 };
    const hourly = { name: 'multi-hourly', points: 4, duration: 3_600_000 };
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await booted.service.consume(k, { limits: [burst, hourly] }));
    expect(results.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(results[2].limits.map((s) => s.allowed)).toEqual([false, true]);
    expect(results[2].retryAfter).toBeLessThanOrEqual(1_000);
    await sleep(1_100);
    expect((await booted.service.consume(k, { limits: [burst, hourly] })).allowed).toBe(true);
    // Each limit counts independently (like @nestjs/throttler): the hourly one also counted the call the
    // burst limit refused, so its 4 points are gone now.
    const refused = await booted.service.consume(k, { limits: [burst, hourly] });
    expect(refused.limits.map((s) => s.allowed)).toEqual([true, false]);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfter).toBeGreaterThan(3_000_000);
  });

  it('uses named policies and the module defaults', async () => {
    const k = key();
    const login = [];
    for (let i = 0; i < 3; i++) login.push((await booted.service.consume(k, { limits: 'login' })).allowed);
    expect(login).toEqual([true, true, false]);
    const pair = await booted.service.consume(k, { limits: 'pair' });
    expect(pair.limits.map((s) => [s.algorithm, s.points])).toEqual([
      ['token-bucket', 2],
      ['fixed-window', 5],
    ]);
    const defaults = [];
    for (let i = 0; i < 4; i++) defaults.push((await booted.service.consume(k)).allowed);
    expect(defaults).toEqual([true, true, true, false]);
    expect(() => booted.service.consume(k, { limits: 'nope' })).toThrow(
      /policy "nope", which is not configured/,
    );
  });

  it('hashes client keys that are long or hold braces, so keys stay bounded and hash tags intact', async () => {
    const long = `key:${'x'.repeat(5_000)}`;
    const braces = 'key:{evil}';
    for (const k of [long, braces]) {
      const limits = { name: 'hashing', points: 1, duration: 10_000 };
      expect((await booted.service.consume(k, { limits })).allowed).toBe(true);
      expect((await booted.service.consume(k, { limits })).allowed).toBe(false);
    }
    const keys = (await limiterKeys(conn)).filter((x) => x.includes(':hashing:'));
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k).toMatch(/^redwing:ratelimit:fw:hashing:1:10000:\{h:[A-Za-z0-9_-]{43}\}$/);
  });

  it('counts decisions in the metrics registry', async () => {
    const before = await counterValue(booted.metrics, 'redwing_ratelimit_decisions_total', {
      result: 'denied',
    });
    const k = key();
    const limits = { name: 'metered', points: 1, duration: 10_000 };
    await booted.service.consume(k, { limits });
    await booted.service.consume(k, { limits });
    expect(
      await counterValue(booted.metrics, 'redwing_ratelimit_decisions_total', {
        result: 'denied',
        mode: 'redis',
      }),
    ).toBe(before + 1);
  });
});

describe('RateLimitService with Redis unavailable and fallbacks disabled (REDIS_FALLBACK_ENABLED=false)', () => {
  it('does not limit non-critical calls (mode bypass), refuses critical ones, and logs the switch once', async () => {
    const server = await RedisServer.start();
    const booted = await bootService(
      { url: server.url(), fallback: { enabled: false } },
      { points: 1, duration: 10_000 },
    );
    try {
      booted.manager.get().breaker.forceOpen();
      const open = [];
      for (let i = 0; i < 3; i++) open.push(await booted.service.consume('ip:10.9.9.9'));
      expect(open.map((d) => [d.allowed, d.mode])).toEqual(Array(3).fill([true, 'bypass']));
      const critical = await booted.service.consume('ip:10.9.9.9', {
        limits: { points: 1, duration: 10_000, critical: true },
      });
      expect(critical).toMatchObject({ allowed: false, unavailable: true, retryAfter: 5_000 });
      expect(booted.service.stats()).toMatchObject({
        mode: 'local',
        localDecisions: 0,
        local: { entries: 0 },
      });
      expect(booted.logger.of('RateLimit')).toEqual([
        expect.stringMatching(
          /^warn: .*forced-open.*fallbacks are disabled \(REDIS_FALLBACK_ENABLED=false\), so non-critical limits are not enforced/,
        ),
      ]);
      booted.manager.get().breaker.release();
      expect((await booted.service.consume('ip:10.9.9.9')).mode).toBe('redis');
      expect(booted.logger.of('RateLimit')).toHaveLength(2);
    } finally {
      await booted.module.close();
      await server.stop();
    }
  });
});

describe('RateLimitService when Redis answers an error that is not an outage', () => {
  it('decides those calls in memory without switching to local mode, logs the error once, and counts in Redis again when it clears', async () => {
    const server = await RedisServer.start();
    const booted = await bootService({ url: server.url() }, { points: 2, duration: 10_000 });
    // The token bucket's first write is HSET, which Redis refuses over maxmemory (a script that already wrote
    // may go on writing, so the sliding window's ZREMRANGEBYSCORE-first script is not refused).
    const limits: RateLimitLimit = { name: 'oom', points: 2, duration: 10_000, algorithm: 'token-bucket' };
    try {
      // Over maxmemory with noeviction, every write is refused with an OOM reply: Redis is up, the call fails.
      await server.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction', 'maxmemory', '1');
      const refused = [];
      for (let i = 0; i < 3; i++) refused.push(await booted.service.consume('ip:10.8.8.8', { limits }));
      expect(refused.map((d) => [d.allowed, d.mode])).toEqual([
        [true, 'local'],
        [true, 'local'],
        [false, 'local'],
      ]);
      expect(booted.service.getMode()).toBe('redis');
      expect(booted.service.stats()).toMatchObject({ switches: { toLocal: 0 }, localDecisions: 3 });
      expect(booted.logger.of('RateLimit')).toEqual([
        expect.stringMatching(/^warn: .*refused a rate-limit call \(ReplyError: OOM .*decided in memory/),
      ]);
      await server.command('CONFIG', 'SET', 'maxmemory', '0');
      const counted = await booted.service.consume('ip:10.8.8.8', { limits });
      expect(counted).toMatchObject({ allowed: true, mode: 'redis' });
      expect(booted.logger.of('RateLimit')).toHaveLength(1);
    } finally {
      await booted.module.close();
      await server.stop();
    }
  });
});
