// CacheService against real Redis, on a standalone server and on a 3-master/3-replica Cluster: the API
// (get/set/del/has/ttl/mget/mset/getOrSet/invalidateTags/deleteByPrefix/stats), two tiers, cross-instance
// invalidation, stampede protection (in-process and cross-instance), stale-while-revalidate, stale-if-error,
// early refresh, compression, and every Lua script with its failure code.
import { CacheValueTooLargeError } from '@redwing/cache';
import type { Cluster, Redis } from 'ioredis';
import { RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { defineScripts } from '@redwing/redis';
import { keySlot } from '../src/cache-keys';
import { CACHE_SCRIPTS } from '../src/redis-tier';
import { bootCache, countingLoader, sleep, waitFor, type CacheInstance, type Topology } from './helpers';

afterAll(() => stopAll());

const PROFILES = {
  short: { ttl: 150 },
  swr: { ttl: 150, staleWhileRevalidate: 10_000 },
  sie: { ttl: 150, staleIfError: 10_000 },
  early: { ttl: 400, earlyRefresh: { beta: 100 } },
  locked: { lock: { ttl: 2_000, wait: 3_000 } },
  nol1: { l1: false as const },
};

describe.each(['standalone', 'cluster'] as const)('CacheService on %s', (kind) => {
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let topology: Topology;
  let a: CacheInstance;
  let b: CacheInstance;
  let raw: Redis | Cluster;
  let n = 0;
  /** A key no other test uses. */
  const fresh = (name = 'k') => `${kind}:${name}:${++n}`;

  beforeAll(async () => {
    if (kind === 'standalone') {
      server = await RedisServer.start();
      topology = { url: server.url() };
    } else {
      cluster = await RedisCluster.start();
      topology = { cluster: cluster.seeds() };
    }
    [a, b] = await Promise.all([
      bootCache(topology, { profiles: PROFILES, compression: { threshold: 1_000 }, maxValueSize: 100_000 }),
      bootCache(topology, { profiles: PROFILES, compression: { threshold: 1_000 }, maxValueSize: 100_000 }),
    ]);
    raw = a.manager.get().command;
  }, 60_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await server?.stop();
    await cluster?.stop();
  });

  const redisKey = (key: string, profile = 'default') => `redwing:cache:${profile}:${key}`;

  it('set on one instance is read by the other from Redis, then from its L1', async () => {
    const key = fresh();
    const value = { when: new Date(7), tags: new Set(['x']), big: 10n ** 20n, none: undefined, nil: null };
    await a.cache.set(key, value);
    const before = (await b.cache.stats({ redis: false })).profiles.default;
    expect(await b.cache.get(key)).toStrictEqual(value);
    expect(await b.cache.get(key)).toStrictEqual(value);
    const after = (await b.cache.stats({ redis: false })).profiles.default;
    expect(after.l2Hits - before.l2Hits).toBe(1);
    expect(after.l1Hits - before.l1Hits).toBe(1);
    expect(await b.cache.has(key)).toBe(true);
    expect(await b.cache.get(fresh('absent'))).toBeUndefined();
    expect(await b.cache.has(fresh('absent'))).toBe(false);
  });

  it('ttl() gives the remaining fresh lifetime; entries expire', async () => {
    const key = fresh();
    await a.cache.set(key, 1, { ttl: 10_000 });
    const ttl = await b.cache.ttl(key);
    expect(ttl).toBeGreaterThan(9_000);
    expect(ttl).toBeLessThanOrEqual(10_000);
    const short = fresh();
    await a.cache.set(short, 'soon gone', { profile: 'short' });
    expect(await b.cache.get(short, { profile: 'short' })).toBe('soon gone');
    await sleep(200);
    expect(await a.cache.get(short, { profile: 'short' })).toBeUndefined();
    expect(await b.cache.get(short, { profile: 'short' })).toBeUndefined();
    expect(await b.cache.ttl(short, { profile: 'short' })).toBeUndefined();
  });

  it('del() removes the entry from Redis and from every L1', async () => {
    const key = fresh();
    await a.cache.set(key, 'v');
    expect(await b.cache.get(key)).toBe('v'); // now in B's L1
    expect(await a.cache.del(key)).toBe(1);
    await waitFor('B to drop its L1 copy', 2_000, async () => (await b.cache.get(key)) === undefined);
    expect(await raw.exists(redisKey(key))).toBe(0);
    expect(await a.cache.del([key, fresh('absent')])).toBe(0);
  });

  it('a write on A replaces the value B holds in L1 (cross-instance invalidation)', async () => {
    const key = fresh();
    await a.cache.set(key, 1);
    expect(await b.cache.get(key)).toBe(1);
    expect(await b.cache.get(key)).toBe(1);
    await a.cache.set(key, 2);
    await waitFor('B to see 2', 2_000, async () => (await b.cache.get(key)) === 2);
  });

  it('mget/mset across hash slots: one call, per-entry TTL and tags, L1 then Redis', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => fresh(`m${i}`));
    await a.cache.mset(
      keys.slice(0, 15).map((key, i) => ({ key, value: { i }, tags: i % 2 ? ['odd'] : undefined })),
    );
    const got = await b.cache.mget<{ i: number }>(keys);
    expect(got.slice(0, 15)).toEqual(keys.slice(0, 15).map((_, i) => ({ i })));
    expect(got.slice(15)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    const before = (await b.cache.stats({ redis: false })).profiles.default;
    await b.cache.mget(keys.slice(0, 15));
    const after = (await b.cache.stats({ redis: false })).profiles.default;
    expect(after.l1Hits - before.l1Hits).toBe(15);
    expect(await a.cache.mget([])).toEqual([]);
  });

  it('mset checks every value before writing any', async () => {
    const [k1, k2] = [fresh(), fresh()];
    await expect(
      a.cache.mset([
        { key: k1, value: 'fine' },
        { key: k2, value: 'x'.repeat(200_000) },
      ]),
    ).rejects.toBeInstanceOf(CacheValueTooLargeError);
    expect(await a.cache.get(k1)).toBeUndefined();
  });

  it('invalidateTags deletes exactly the tagged entries in every profile and every L1', async () => {
    const tag = `board:${fresh()}`;
    const tagged = [fresh(), fresh()];
    const other = fresh();
    await a.cache.set(tagged[0], 'a', { tags: [tag, 'x'] });
    await a.cache.set(tagged[1], 'b', { tags: [tag], profile: 'nol1' });
    await a.cache.set(other, 'c', { tags: ['x'] });
    expect(await b.cache.get(tagged[0])).toBe('a');
    expect(await b.cache.invalidateTags([tag])).toBe(2);
    await waitFor(
      'A to drop the tagged entry',
      2_000,
      async () => (await a.cache.get(tagged[0])) === undefined,
    );
    expect(await b.cache.get(tagged[0])).toBeUndefined();
    expect(await b.cache.get(tagged[1], { profile: 'nol1' })).toBeUndefined();
    expect(await b.cache.get(other)).toBe('c');
    // The tag set is emptied (so Redis drops it); repeating deletes nothing.
    expect(await raw.exists(`redwing:cache:~tag:${tag}`)).toBe(0);
    expect(await b.cache.invalidateTags([tag])).toBe(0);
  });

  it('deleteByPrefix deletes only that prefix of that profile, with SCAN', async () => {
    const base = fresh('pre');
    await a.cache.mset([
      { key: `${base}:1`, value: 1 },
      { key: `${base}:2`, value: 2 },
      { key: `${base}x`, value: 3 },
      { key: `other:${base}:1`, value: 4 },
    ]);
    await a.cache.set(`${base}:1`, 'other profile', { profile: 'short' });
    expect(await b.cache.get(`${base}:1`)).toBe(1);
    expect(await b.cache.deleteByPrefix(`${base}:`)).toBe(2);
    await waitFor('A to drop the prefix', 2_000, async () => (await a.cache.get(`${base}:1`)) === undefined);
    expect(await b.cache.mget([`${base}:1`, `${base}:2`, `${base}x`, `other:${base}:1`])).toEqual([
      undefined,
      undefined,
      3,
      4,
    ]);
    expect(await a.cache.get(`${base}:1`, { profile: 'short' })).toBe('other profile');
  });

  it('getOrSet: 1,000 concurrent misses in one process call the loader once', async () => {
    const key = fresh();
    const loader = countingLoader({ board: 1 }, 50);
    const values = await Promise.all(Array.from({ length: 1_000 }, () => a.cache.getOrSet(key, loader.load)));
    expect(loader.calls()).toBe(1);
    expect(values.every((v) => v.board === 1)).toBe(true);
    expect(await b.cache.getOrSet(key, loader.load)).toEqual({ board: 1 });
    expect(loader.calls()).toBe(1);
  });

  it('with lock: 2 instances × 200 concurrent misses call the loader once in total', async () => {
    const key = fresh();
    const loader = countingLoader('once', 100);
    const [ra, rb] = await Promise.all([
      Promise.all(
        Array.from({ length: 200 }, () => a.cache.getOrSet(key, loader.load, { profile: 'locked' })),
      ),
      Promise.all(
        Array.from({ length: 200 }, () => b.cache.getOrSet(key, loader.load, { profile: 'locked' })),
      ),
    ]);
    expect(loader.calls()).toBe(1);
    expect([...ra, ...rb].every((v) => v === 'once')).toBe(true);
    const locks = [
      (await a.cache.stats({ redis: false })).lock,
      (await b.cache.stats({ redis: false })).lock,
    ];
    expect(locks[0].acquired + locks[1].acquired).toBe(1);
    expect(locks[0].waitHits + locks[1].waitHits).toBe(1);
    expect(await raw.exists(`redwing:cache:~lease:locked:${key}`)).toBe(0);
  });

  it('with lock: a failed load releases the lease and wakes the waiter at once', async () => {
    const key = fresh();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const failing = a.cache.getOrSet(
      key,
      async () => {
        await gate;
        throw new Error('upstream down');
      },
      { profile: 'locked' },
    );
    await waitFor(
      'the lease',
      2_000,
      async () => (await raw.exists(`redwing:cache:~lease:locked:${key}`)) === 1,
    );
    const waiterLoader = countingLoader('from B', 0);
    const waiting = b.cache.getOrSet(key, waiterLoader.load, { profile: 'locked' });
    await sleep(100);
    expect(waiterLoader.calls()).toBe(0); // B waits for A's lease
    const releasedAt = Date.now();
    release();
    await expect(failing).rejects.toThrow('upstream down');
    expect(await waiting).toBe('from B');
    // Woken by the release message, far sooner than the 3 s wait or the 2 s lease.
    expect(Date.now() - releasedAt).toBeLessThan(1_000);
    expect(waiterLoader.calls()).toBe(1);
  });

  it('a load that overlaps a write or an invalidation hands its value back but does not store it', async () => {
    const key = fresh();
    const slow = (value: string) => async () => {
      await sleep(150);
      return value;
    };
    const loading = a.cache.getOrSet(key, slow('loaded-before-the-write'));
    await sleep(30);
    await b.cache.set(key, 'newer'); // another instance writes while A loads
    expect(await loading).toBe('loaded-before-the-write');
    expect(await b.cache.get(key)).toBe('newer');
    expect(await a.cache.get(key)).toBe('newer');

    const tagged = fresh();
    const loadingTagged = a.cache.getOrSet(tagged, slow('stale'), { tags: [`t:${tagged}`] });
    await sleep(30);
    await b.cache.invalidateTags([`t:${tagged}`]);
    expect(await loadingTagged).toBe('stale');
    expect(await a.cache.get(tagged)).toBeUndefined();
    expect(await b.cache.get(tagged)).toBeUndefined();
  });

  it('stale-while-revalidate: serves the stale value and refreshes it once in the background', async () => {
    const key = fresh();
    let version = 0;
    const loader = countingLoader(() => ++version, 30);
    expect(await a.cache.getOrSet(key, loader.load, { profile: 'swr' })).toBe(1);
    await sleep(200); // past the 150 ms TTL, inside the stale window
    const served = await Promise.all(
      Array.from({ length: 20 }, () => a.cache.getOrSet(key, loader.load, { profile: 'swr' })),
    );
    expect(served.every((v) => v === 1)).toBe(true);
    await waitFor('the background refresh', 2_000, () => loader.calls() === 2);
    await waitFor(
      'the refreshed value',
      2_000,
      async () => (await a.cache.getOrSet(key, loader.load, { profile: 'swr' })) === 2,
    );
    expect(loader.calls()).toBe(2);
    // B, reading from Redis, gets the refreshed value fresh.
    expect(await b.cache.get(key, { profile: 'swr' })).toBe(2);
    const stats = (await a.cache.stats({ redis: false })).profiles.swr;
    expect(stats.stale).toBeGreaterThanOrEqual(20);
  });

  it('stale-if-error: serves the stale value when the loader fails, and throws past the window', async () => {
    const key = fresh();
    await a.cache.getOrSet(key, () => 'good', { profile: 'sie' });
    await sleep(200);
    const failing = () => Promise.reject(new Error('boom'));
    expect(await a.cache.getOrSet(key, failing, { profile: 'sie' })).toBe('good');
    expect(await b.cache.getOrSet(key, failing, { profile: 'sie' })).toBe('good');
    expect((await a.cache.stats({ redis: false })).profiles.sie.staleIfError).toBeGreaterThanOrEqual(1);
    const gone = fresh();
    await a.cache.getOrSet(gone, () => 'good', { profile: 'short' });
    await sleep(200);
    await expect(a.cache.getOrSet(gone, failing, { profile: 'short' })).rejects.toThrow('boom');
  });

  it('probabilistic early refresh reloads a hot entry before it expires, while serving it fresh', async () => {
    const key = fresh();
    let version = 0;
    const loader = countingLoader(() => ++version, 25);
    await a.cache.getOrSet(key, loader.load, { profile: 'early' });
    expect(loader.calls()).toBe(1);
    await sleep(200); // 200 ms of the 400 ms TTL left: with beta 100 and a 25 ms load, nearly every read refreshes
    const served: number[] = [];
    for (let i = 0; i < 10; i++) served.push(await a.cache.getOrSet(key, loader.load, { profile: 'early' }));
    await waitFor('an early refresh', 2_000, () => loader.calls() >= 2);
    expect(served[0]).toBe(1); // the first read is still served from the fresh entry
    const stats = (await a.cache.stats({ redis: false })).profiles.early;
    expect(stats.misses).toBe(1);
    expect(stats.stale).toBe(0);
  });

  it('refuses a value over maxValueSize with a clear error, and compresses big values in Redis', async () => {
    await expect(a.cache.set(fresh(), 'x'.repeat(100_001))).rejects.toThrow(/maxValueSize \(100000 bytes\)/);
    const key = fresh();
    const big = { text: 'compressible '.repeat(1_000) };
    await a.cache.set(key, big);
    const stored = (await raw.getBuffer(redisKey(key)))!;
    expect(stored[1] & 1).toBe(1); // compressed flag
    expect(stored.length).toBeLessThan(JSON.stringify(big).length / 10);
    expect(await b.cache.get(key)).toEqual(big);
  });

  it('stats() reports counters, L1, Redis memory and the namespace key count', async () => {
    await a.cache.set(fresh(), 1);
    const s = await a.cache.stats();
    expect(s.redis).toMatchObject({ available: true, maxmemoryPolicy: expect.any(String) });
    const redis = s.redis as Extract<typeof s.redis, { available: true }>;
    expect(redis.nodes).toHaveLength(kind === 'cluster' ? 3 : 1);
    expect(redis.keys.total).toBeGreaterThan(0);
    expect(redis.keys.complete).toBe(true);
    expect(s.invalidation).toMatchObject({ enabled: true, synced: true });
    expect(s.l1.entries).toBeGreaterThan(0);
  });

  // Cluster only: the slot function must agree with the server's.
  if (kind === 'cluster') {
    it('keySlot agrees with CLUSTER KEYSLOT, odd hash tags included', async () => {
      const [node] = await cluster!.masters();
      const keys = [
        'a',
        'redwing:cache:default:x',
        '{user1}:a',
        'a{}b}c',
        'a{b}c}',
        '{}',
        '{',
        '}{x}',
        'ünï{cødé}',
        'x{{y}}',
      ];
      for (const key of keys) expect(keySlot(key)).toBe(await node.command('CLUSTER', 'KEYSLOT', key));
    });
  }

  describe('scripts', () => {
    /** The cache's scripts as it calls them (defineScripts: EVALSHA, EVAL on NOSCRIPT). */
    const scripts = () => defineScripts(raw, CACHE_SCRIPTS);

    it('add-tag-member: adds, never shortens the set lifetime, and returns -1 on a foreign type', async () => {
      const tagKey = `redwing:cache:~tag:${fresh('t')}`;
      const run = (member: string, ttl: number) => scripts().addTagMember([tagKey], [member, ttl]);
      expect(await run('m1', 60_000)).toBe(1);
      expect(await run('m1', 60_000)).toBe(0);
      expect(await run('m2', 1_000)).toBe(1);
      expect(await raw.pttl(tagKey)).toBeGreaterThan(50_000);
      const wrong = `redwing:cache:~tag:${fresh('t')}`;
      await raw.set(wrong, 'a string');
      expect(await scripts().addTagMember([wrong], ['m', 1_000])).toBe(-1);
      expect(await raw.get(wrong)).toBe('a string');
    });

    it('release-lease: deletes only our lease (-1 otherwise) and publishes the wake-up', async () => {
      const lease = `redwing:cache:~lease:default:${fresh()}`;
      const run = (token: string) => scripts().releaseLease([lease], [token, '', '']);
      await raw.set(lease, 'theirs', 'PX', 10_000);
      expect(await run('mine')).toBe(-1);
      expect(await raw.get(lease)).toBe('theirs');
      expect(await run('theirs')).toBe(1);
      expect(await raw.exists(lease)).toBe(0);
      expect(await run('theirs')).toBe(-1);
    });

    it('publish-invalidation: returns the next number; a corrupted counter is reset (-1) and subscribers flush', async () => {
      const key = fresh();
      await a.cache.set(key, 'v');
      expect(await b.cache.get(key)).toBe('v'); // in B's L1
      const flushesBefore = (await b.cache.stats({ redis: false })).invalidation.flushes;
      // A counter of the test's own, so that background invalidations of the instances (refreshes left by
      // earlier tests) cannot increment it between the corruption and the call; the channel is the real one.
      const counter = `redwing:cache:~epoch-test:${fresh()}`;
      await raw.set(counter, 'not a number');
      const publish = () =>
        scripts().publishInvalidation([counter], ['redwing:cache:~inv', JSON.stringify({ o: 'test' })]);
      expect(await publish()).toBe(-1);
      expect(await raw.get(counter)).toBe('1');
      // The message went out as number 1: B, which had seen a higher number, notices the gap and flushes.
      await waitFor(
        'B to notice the gap and flush',
        2_000,
        async () => (await b.cache.stats({ redis: false })).invalidation.flushes > flushesBefore,
      );
      // Counting resumes from the reset value.
      expect(await publish()).toBe(2);
      expect(await publish()).toBe(3);
      expect(await raw.get(counter)).toBe('3');
      await raw.del(counter);
      // Flushed, B reads again from Redis: still correct.
      expect(await b.cache.get(key)).toBe('v');
    });
  });
});
