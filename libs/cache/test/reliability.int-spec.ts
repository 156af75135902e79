// RELIABILITY.md, "Cache", and the cache row of the degradation contract (DESIGN §3.1), against real
// redis-server processes: outages by SIGKILL, by a fault proxy (reset / black hole) in front of one instance,
// and by killing one instance's subscriber connection. Each test counts what happened and asserts the figure.
import type { Redis } from 'ioredis';
import { FaultProxy, RedisServer, stopAll } from '../../../test/harness';
import { bootCache, countingLoader, percentile, sleep, waitFor, type CacheInstance } from './helpers';

const COMMAND_TIMEOUT = 300;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await stopAll();
});
afterEach(() => expect(unhandled).toEqual([]));

/** What Redis holds for a cache key (the payload follows a 26-byte header). */
async function stored(server: RedisServer, key: string): Promise<string | null> {
  const buf = (await server.commandWith(
    { buffers: true },
    'GET',
    `redwing:cache:default:${key}`,
  )) as Buffer | null;
  return buf === null ? null : buf.toString('utf8', 26);
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await p;
  return { value, ms: performance.now() - started };
}

const down = (i: CacheInstance) => async () => !(await i.cache.stats({ redis: false })).l2.available;
/** Connected and resynced: a resync still running from an earlier outage would flush L1 mid-test. */
const settled = (i: CacheInstance) => async () => {
  const s = await i.cache.stats({ redis: false });
  return s.l2.available && s.invalidation.synced;
};

describe('no stale write-back', () => {
  let server: RedisServer;
  let proxy: FaultProxy;
  let a: CacheInstance; // behind the proxy: the one that loses Redis
  let b: CacheInstance;

  beforeAll(async () => {
    server = await RedisServer.start();
    proxy = await FaultProxy.start(server);
    a = await bootCache(
      { url: `redis://127.0.0.1:${proxy.port}` },
      {},
      { redis: { commandTimeout: COMMAND_TIMEOUT } },
    );
    b = await bootCache({ url: server.url() });
  });
  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await proxy?.stop();
    await server?.stop();
  });

  it('A writes v1 during its outage, B writes v2: Redis holds v2 in every trial; A drops v1 ≤ 1 s after recovery', async () => {
    const TRIALS = 10;
    const dropTimes: number[] = [];
    for (let trial = 1; trial <= TRIALS; trial++) {
      const key = `wb:${trial}`;
      await waitFor('A connected and resynced', 5_000, settled(a));
      await a.cache.set(key, `v0-${trial}`);
      expect(await b.cache.get(key)).toBe(`v0-${trial}`);

      proxy.setMode('reset');
      await waitFor('A to lose Redis', 5_000, down(a));
      await a.cache.set(key, `v1-from-A-${trial}`); // L1 only
      expect(await a.cache.get(key)).toBe(`v1-from-A-${trial}`); // L1 keeps serving
      expect((await a.cache.stats({ redis: false })).l1.localOnly).toBe(1);
      await b.cache.set(key, `v2-from-B-${trial}`);

      proxy.setMode('pass');
      const recovered = Date.now();
      await waitFor('A to read v2', 5_000, async () => (await a.cache.get(key)) === `v2-from-B-${trial}`);
      dropTimes.push(Date.now() - recovered);
      expect((await a.cache.stats({ redis: false })).l1.localOnly).toBe(0);
      await sleep(50); // anything written back late would land by now
      expect(await stored(server, key)).toBe(JSON.stringify(`v2-from-B-${trial}`));
    }
    expect(dropTimes).toHaveLength(TRIALS);
    expect(Math.max(...dropTimes)).toBeLessThanOrEqual(1_000);
  }, 60_000);

  it('an invalidation made during the outage is applied locally at once and replayed when Redis returns', async () => {
    const key = 'deferred:1';
    await waitFor('A connected and resynced', 5_000, settled(a));
    await a.cache.set(key, 'old');
    expect(await b.cache.get(key)).toBe('old');
    proxy.setMode('reset');
    await waitFor('A to lose Redis', 5_000, down(a));
    expect(await a.cache.del(key)).toBe(0);
    expect(await a.cache.invalidateTags(['t-deferred'])).toBe(0);
    expect(await a.cache.get(key)).toBeUndefined();
    expect((await a.cache.stats({ redis: false })).invalidation.deferred).toBe(2);
    expect(await b.cache.get(key)).toBe('old'); // Redis still has it
    proxy.setMode('pass');
    await waitFor(
      'the replayed deletion to reach B',
      5_000,
      async () => (await b.cache.get(key)) === undefined,
    );
    // The deletion and the tag invalidation replay one after the other: wait for the queue to drain.
    await waitFor(
      'the tag invalidation to replay',
      5_000,
      async () => (await a.cache.stats({ redis: false })).invalidation.deferred === 0,
    );
    const s = (await a.cache.stats({ redis: false })).invalidation;
    expect(s).toMatchObject({ deferred: 0, replayed: 2, dropped: 0 });
    expect(await stored(server, key)).toBeNull();
  }, 30_000);

  it('invalidations missed while disconnected empty L1 at the resync', async () => {
    const key = 'missed:1';
    await waitFor('A connected and resynced', 5_000, settled(a));
    await b.cache.set(key, 1);
    expect(await a.cache.get(key)).toBe(1); // in A's L1
    const flushes = (await a.cache.stats({ redis: false })).invalidation.flushes;
    proxy.setMode('reset');
    await waitFor('A to lose Redis', 5_000, down(a));
    await b.cache.set(key, 2); // A's subscriber cannot hear this
    expect(await a.cache.get(key)).toBe(1); // degraded: L1 serves what it has
    proxy.setMode('pass');
    await waitFor('A to read 2', 5_000, async () => (await a.cache.get(key)) === 2);
    await waitFor(
      'A to resync',
      5_000,
      async () => (await a.cache.stats({ redis: false })).invalidation.synced,
    );
    expect((await a.cache.stats({ redis: false })).invalidation.flushes).toBe(flushes + 1);
  }, 30_000);
});

describe('degradation contract: Redis SIGKILLed', () => {
  it('L1 keeps serving, Redis reads are misses, nothing waits longer than the command timeout; recovers alone', async () => {
    const server = await RedisServer.start();
    const a = await bootCache(
      { url: server.url() },
      { profiles: { kanban: { ttl: 60_000 } } },
      { redis: { commandTimeout: COMMAND_TIMEOUT, breaker: { minimumVolume: 5, resetTimeout: 500 } } },
    );
    try {
      await a.cache.set('hot', { board: 1 });
      expect(await a.cache.get('hot')).toEqual({ board: 1 });
      await server.kill('SIGKILL');
      await waitFor('the cache to see Redis down', 5_000, down(a));

      const durations: number[] = [];
      const loader = countingLoader('loaded', 5);
      const deadline = Date.now() + 2_000;
      let rounds = 0;
      for (; Date.now() < deadline && rounds < 500; rounds++) {
        const hot = await timed(a.cache.get('hot'));
        expect(hot.value).toEqual({ board: 1 });
        const cold = await timed(a.cache.get(`cold:${rounds}`));
        expect(cold.value).toBeUndefined();
        const loaded = await timed(a.cache.getOrSet(`load:${rounds % 5}`, loader.load));
        expect(loaded.value).toBe('loaded');
        const written = await timed(a.cache.set(`w:${rounds}`, rounds));
        durations.push(hot.ms, cold.ms, loaded.ms, written.ms);
      }
      expect(rounds).toBeGreaterThan(20);
      expect(Math.max(...durations)).toBeLessThanOrEqual(COMMAND_TIMEOUT + 100);
      // Written to L1 only, and served from there.
      expect(loader.calls()).toBe(5);
      expect(await a.cache.get('w:3')).toBe(3);
      const stats = await timed(a.cache.stats());
      expect(stats.ms).toBeLessThanOrEqual(COMMAND_TIMEOUT + 100);
      expect(stats.value.redis).toMatchObject({ available: false });
      expect(stats.value.recommendations.map((r) => r.code)).toContain('redis-unavailable');
      expect(stats.value.l1.localOnly).toBeGreaterThan(rounds);
      expect(stats.value.l2.errors).toBeGreaterThan(0);

      await server.restart();
      const back = Date.now();
      await waitFor('Redis back', 5_000, async () => (await a.cache.stats({ redis: false })).l2.available);
      await waitFor(
        'L1-only entries dropped',
        1_000,
        async () => (await a.cache.stats({ redis: false })).l1.localOnly === 0,
      );
      expect(Date.now() - back).toBeLessThanOrEqual(5_000);
      // Dropped, not written back: the restarted (empty) Redis has none of them, and a read is a miss.
      expect(await a.cache.get('w:3')).toBeUndefined();
      expect(await server.command('DBSIZE')).toBeLessThanOrEqual(1); // at most the invalidation counter
      // The restarted Redis lost the invalidation counter, so the resync could not prove that nothing was
      // missed: L1 was emptied as well (the safe side), and the next read is a miss.
      expect(await a.cache.get('hot')).toBeUndefined();
    } finally {
      await a.module.close();
      await server.stop();
    }
  }, 30_000);

  it('black hole: every call settles within the command timeout; the breaker then answers in microseconds', async () => {
    const server = await RedisServer.start();
    const proxy = await FaultProxy.start(server);
    const a = await bootCache(
      { url: `redis://127.0.0.1:${proxy.port}` },
      {},
      {
        redis: {
          commandTimeout: COMMAND_TIMEOUT,
          breaker: { minimumVolume: 5 },
          healthCheck: { interval: 0 },
        },
      },
    );
    try {
      await a.cache.set('hot', 'x');
      proxy.setMode('blackhole');
      const calls = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          timed(
            i % 3 === 0
              ? a.cache.get('hot')
              : i % 3 === 1
                ? a.cache.get(`cold${i}`)
                : a.cache.getOrSet(`l${i}`, () => i),
          ),
        ),
      );
      expect(Math.max(...calls.map((c) => c.ms))).toBeLessThanOrEqual(COMMAND_TIMEOUT + 100);
      expect(calls.filter((_, i) => i % 3 === 0).every((c) => c.value === 'x')).toBe(true);
      const after = await timed(a.cache.get('cold-after'));
      expect(after.value).toBeUndefined();
      expect(a.manager.get().getBreakerState()).toBe('open');
      expect(after.ms).toBeLessThan(50);
    } finally {
      proxy.setMode('pass');
      await a.module.close();
      await proxy.stop();
      await server.stop();
    }
  }, 30_000);
});

describe('cross-instance invalidation', () => {
  let server: RedisServer;
  let a: CacheInstance;
  let b: CacheInstance;
  beforeAll(async () => {
    server = await RedisServer.start();
    [a, b] = await Promise.all([bootCache({ url: server.url() }), bootCache({ url: server.url() })]);
  });
  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await server?.stop();
  });

  it('write on A, read on B: B never serves the old value after the bound (p99 measured over 200 writes)', async () => {
    const BOUND_MS = 50;
    const key = 'xinv';
    await a.cache.set(key, 0);
    const bounds: number[] = [];
    let staleAfterBound = 0;
    for (let i = 1; i <= 200; i++) {
      expect(await b.cache.get(key)).toBe(i - 1); // B holds the old value in L1
      await a.cache.set(key, i);
      const written = performance.now();
      while ((await b.cache.get(key)) !== i) {
        if (performance.now() - written > 2_000)
          throw new Error(`B still serves the old value 2 s after write ${i}`);
        await new Promise((r) => setImmediate(r));
      }
      bounds.push(performance.now() - written);
      for (let j = 0; j < 3; j++) if ((await b.cache.get(key)) !== i) staleAfterBound++;
    }
    const p99 = percentile(bounds, 99);
    process.stdout.write(
      `cross-instance invalidation (service level): p50 ${percentile(bounds, 50).toFixed(2)} ms, ` +
        `p99 ${p99.toFixed(2)} ms, max ${Math.max(...bounds).toFixed(2)} ms over ${bounds.length} writes\n`,
    );
    expect(staleAfterBound).toBe(0);
    expect(p99).toBeLessThanOrEqual(BOUND_MS);
  }, 60_000);

  it('while B’s subscriber is disconnected, B reads Redis instead of a possibly stale L1, then resyncs', async () => {
    const key = 'sub-killed';
    const sub = b.manager.get().subscriber() as Redis;
    let flushesSeen = 0;
    for (let i = 1; i <= 10; i++) {
      await a.cache.set(key, `v${i}-old`);
      await waitFor('B to hold the old value', 2_000, async () => (await b.cache.get(key)) === `v${i}-old`);
      const flushes = (await b.cache.stats({ redis: false })).invalidation.flushes;
      const port = sub.stream?.localPort;
      await server.command('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${port}`);
      await waitFor(
        'B to notice',
        2_000,
        async () => !(await b.cache.stats({ redis: false })).invalidation.synced,
      );
      await a.cache.set(key, `v${i}-new`);
      // Not in sync, Redis reachable: L1 is bypassed, so the new value is read at once.
      expect(await b.cache.get(key)).toBe(`v${i}-new`);
      await waitFor(
        'B to resync',
        5_000,
        async () => (await b.cache.stats({ redis: false })).invalidation.synced,
      );
      if ((await b.cache.stats({ redis: false })).invalidation.flushes > flushes) flushesSeen++;
      expect(await b.cache.get(key)).toBe(`v${i}-new`);
    }
    expect(flushesSeen).toBe(10); // the counter moved while away every time: L1 emptied at each resync
  }, 60_000);
});

describe('memory guard', () => {
  it('an instance refusing writes (OOM) pauses writes to Redis instead of failing calls, and says why', async () => {
    const server = await RedisServer.start({ maxmemory: '2mb', maxmemoryPolicy: 'noeviction' });
    const a = await bootCache({ url: server.url() }, { compression: false });
    try {
      const value = 'x'.repeat(50_000);
      let i = 0;
      for (; i < 300 && (await a.cache.stats({ redis: false })).l2.writesSkipped === 0; i++) {
        await a.cache.set(`fill:${i}`, value);
      }
      expect(i).toBeLessThan(300);
      expect(await a.cache.get(`fill:${i - 1}`)).toBe(value); // kept in L1
      const s = await a.cache.stats();
      expect(s.l2.memoryGuardUntil).not.toBeNull();
      expect(s.recommendations.map((r) => r.code)).toEqual(
        expect.arrayContaining(['writes-refused-oom', 'noeviction', 'memory-high']),
      );
      const before = s.l2.writesSkipped;
      await a.cache.set('while-paused', 1); // not even sent
      expect((await a.cache.stats({ redis: false })).l2.writesSkipped).toBe(before + 1);
    } finally {
      await a.module.close();
      await server.stop();
    }
  });
});
