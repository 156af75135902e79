// LockService against real Redis, on a standalone server and on a 3-master Cluster: grants and fencing
// tokens, busy and waiting (woken by the release message, not by polling), owner-only release, extension,
// using() with automatic extension, the fenced-write check, @WithLock, and the metrics.
import { Injectable } from '@nestjs/common';
import {
  LockBusyError,
  LockConfigError,
  LockLostError,
  LockService,
  WithLock,
  releaseLockScript,
  type Lock,
} from '@redwing/lock';
import { defineScripts, type RedisClientModuleOptions, type RedisConnection } from '@redwing/redis';
import { RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { bootLocks, metricValue, sleep, waitFor, type Booted } from './helpers';

afterAll(() => stopAll());

/** Records overlapping sections of the decorated method. */
@Injectable()
class OrdersService {
  inside = 0;
  overlaps = 0;
  fences: number[] = [];
  constructor(readonly locks: LockService) {}

  @WithLock('order:{0}', { ttl: 2_000, wait: 5_000 })
  async ship(orderId: string, ms: number): Promise<string> {
    if (++this.inside > 1) this.overlaps++;
    this.fences.push(this.locks.current()!.lock.fence);
    await sleep(ms);
    this.inside--;
    return `shipped ${orderId}`;
  }
}

describe.each(['standalone', 'cluster'] as const)('LockService on %s', (topology) => {
  let a: Booted;
  let b: Booted;
  let conn: RedisConnection;
  let n = 0;
  const res = () => `res-${topology}-${++n}`;

  beforeAll(async () => {
    let redis: RedisClientModuleOptions;
    if (topology === 'cluster') {
      const cluster = await RedisCluster.start();
      redis = { cluster: { nodes: cluster.seeds() } };
    } else {
      redis = { url: (await RedisServer.start()).url() };
    }
    // A and B are two "instances": their own contexts and connections on the same Redis.
    a = await bootLocks(redis, { ttl: 5_000, retryInterval: 10_000 }, { providers: [OrdersService] });
    b = await bootLocks(redis, { ttl: 5_000, retryInterval: 10_000 });
    conn = a.manager.get().command;
  }, 60_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
  });

  it('grants, refuses while held, and issues strictly increasing fences per resource across instances', async () => {
    const r = res();
    const fences: number[] = [];
    for (let i = 0; i < 6; i++) {
      const owner = i % 2 ? a.locks : b.locks;
      const lock = await owner.acquire(r, { ttl: 2_000 });
      expect(await (i % 2 ? b.locks : a.locks).tryAcquire(r)).toBeNull();
      fences.push(lock.fence);
      expect(await owner.release(lock)).toBe(true);
    }
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]);
    expect(Number.isSafeInteger(fences[0])).toBe(true);
  });

  it("gives up after the wait with the holder's remaining lease as the hint", async () => {
    const r = res();
    const held = await a.locks.acquire(r, { ttl: 3_000 });
    const err = await b.locks.acquire(r, { wait: 150 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockBusyError);
    expect((err as LockBusyError).retryAfter).toBeGreaterThan(0);
    expect((err as LockBusyError).retryAfter).toBeLessThanOrEqual(3_000);
    expect((err as LockBusyError).waited).toBeGreaterThanOrEqual(100);
    // A contender in the holder's own process (queued locally, Redis not asked) gets the same hint.
    for (const wait of [0, 150]) {
      const local = await a.locks.acquire(r, { wait }).catch((e: unknown) => e);
      expect(local).toBeInstanceOf(LockBusyError);
      expect((local as LockBusyError).retryAfter).toBeGreaterThan(1_000);
      expect((local as LockBusyError).retryAfter).toBeLessThanOrEqual(3_000);
    }
    await a.locks.release(held);
    // Two callers of one process at once: the second is refused while the first is still acquiring (no
    // holder yet, Redis not asked for it); its hint is the lease the first one asks for.
    const [first, second] = await Promise.allSettled([
      a.locks.acquire(r, { ttl: 2_000 }),
      a.locks.acquire(r, { ttl: 2_000, wait: 0 }),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second.status).toBe('rejected');
    expect((second as PromiseRejectedResult).reason).toBeInstanceOf(LockBusyError);
    expect(((second as PromiseRejectedResult).reason as LockBusyError).retryAfter).toBe(2_000);
    await a.locks.release(
      (first as PromiseFulfilledResult<Awaited<ReturnType<typeof a.locks.acquire>>>).value,
    );
  });

  it('wakes a waiter of another instance on release (pub/sub), not by polling', async () => {
    // ttl 30 s and retryInterval 10 s: without the release message the waiter would sit for 10 s.
    const r = res();
    const held = await a.locks.acquire(r, { ttl: 30_000 });
    const started = Date.now();
    const waiting = b.locks.acquire(r, { wait: 8_000 });
    await sleep(200);
    await a.locks.release(held);
    const lock = await waiting;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(lock.fence).toBeGreaterThan(held.fence);
    await b.locks.release(lock);
  });

  it('serializes 20 concurrent holders over two instances with increasing fences and no give-ups', async () => {
    const r = res();
    let inside = 0;
    let overlaps = 0;
    const grants: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const svc = i % 2 ? a.locks : b.locks;
        const lock = await svc.acquire(r, { ttl: 2_000, wait: 15_000 });
        if (++inside > 1) overlaps++;
        grants.push(lock.fence);
        await sleep(5);
        inside--;
        await svc.release(lock);
      }),
    );
    expect(overlaps).toBe(0);
    expect(grants).toHaveLength(20);
    for (let i = 1; i < grants.length; i++) expect(grants[i]).toBeGreaterThan(grants[i - 1]);
  });

  it('release is owner-only: after expiry and re-acquisition by another owner, 0 deletions of its lock', async () => {
    const r = res();
    const stale = await a.locks.acquire(r, { ttl: 100 });
    await sleep(200);
    const current = await b.locks.acquire(r, { ttl: 5_000 });
    expect(await a.locks.release(stale)).toBe(false);
    await expect(a.locks.extend(stale)).rejects.toBeInstanceOf(LockLostError);
    const key = a.locks.keys(r).lock;
    expect(await conn.pttl(key)).toBeGreaterThan(1_000);
    // A wrong owner value straight at the script: nothing deleted either.
    const scripts = defineScripts(conn, { release: releaseLockScript });
    expect(await scripts.release([key, `${key}:waiting`], ['not-the-owner', 'ch', key])).toBe(0);
    expect(await conn.exists(key)).toBe(1);
    await expect(b.locks.extend(current, 5_000)).resolves.toBeDefined();
    expect(await b.locks.release(current)).toBe(true);
    expect(await conn.exists(key)).toBe(0);
  });

  it('extends a lease it owns; refuses a lock object it did not create', async () => {
    const r = res();
    const lock = await a.locks.acquire(r, { ttl: 300 });
    await sleep(150);
    await a.locks.extend(lock, 2_000);
    await sleep(300);
    expect(await b.locks.tryAcquire(r)).toBeNull();
    expect(lock.validUntil).toBeGreaterThan(Date.now() + 1_000);
    await expect(
      a.locks.release({ resource: r, fence: lock.fence, validUntil: 0, ttl: 1 } as Lock),
    ).rejects.toBeInstanceOf(LockConfigError);
    await a.locks.release(lock);
  });

  it('using() keeps the lease alive past its ttl, then releases it', async () => {
    const r = res();
    const value = await a.locks.using(
      r,
      async (signal) => {
        await sleep(2_500);
        expect(signal.aborted).toBe(false);
        expect(await b.locks.tryAcquire(r, { ttl: 1_000 })).toBeNull();
        return 42;
      },
      { ttl: 1_200 },
    );
    expect(value).toBe(42);
    const after = await b.locks.tryAcquire(r);
    expect(after).not.toBeNull();
    await b.locks.release(after!);
  });

  it('writeFenced accepts the holder and refuses an older token', async () => {
    const r = res();
    const first = await a.locks.acquire(r, { ttl: 100 });
    expect(await a.locks.writeFenced(`doc:${r}`, first, 'v1')).toEqual({
      accepted: true,
      fence: first.fence,
    });
    await sleep(150);
    const second = await b.locks.acquire(r);
    expect((await b.locks.writeFenced(`doc:${r}`, second, 'v2')).accepted).toBe(true);
    expect(await a.locks.writeFenced(`doc:${r}`, first, 'stale')).toEqual({
      accepted: false,
      fence: second.fence,
    });
    expect(await a.locks.readFenced(`doc:${r}`)).toEqual({ value: 'v2', fence: second.fence });
    await b.locks.release(second);
  });

  it('@WithLock serializes a provider method by its argument', async () => {
    const orders = a.module.get(OrdersService);
    const results = await Promise.all([
      orders.ship(`o-${topology}`, 30),
      orders.ship(`o-${topology}`, 30),
      orders.ship(`o-${topology}`, 30),
    ]);
    expect(results).toEqual(Array(3).fill(`shipped o-${topology}`));
    expect(orders.overlaps).toBe(0);
    expect(orders.fences[2]).toBeGreaterThan(orders.fences[0]);
  });

  it('counts acquisitions by outcome and hold/wait times', async () => {
    const r = res();
    const lock = await a.locks.acquire(r);
    await a.locks.tryAcquire(r);
    await a.locks.release(lock);
    expect(
      await metricValue(a.metrics, 'redwing_lock_acquisitions_total{outcome="acquired"}'),
    ).toBeGreaterThan(0);
    expect(await metricValue(a.metrics, 'redwing_lock_acquisitions_total{outcome="busy"}')).toBeGreaterThan(
      0,
    );
    expect(await metricValue(a.metrics, 'redwing_lock_hold_seconds_count')).toBeGreaterThan(0);
    expect(
      await metricValue(a.metrics, 'redwing_lock_wait_seconds_count{outcome="acquired"}'),
    ).toBeGreaterThan(0);
  });
});

describe('LockService when Redis refuses the release channel (an ACL without it)', () => {
  const REFUSED = 'redwing_lock_refused_subscriptions_current';

  it('still releases contended locks (waiters poll), and subscribes once the ACL is fixed (waiters wake)', async () => {
    const server = await RedisServer.start();
    const acl = (...rules: string[]) => server.command('ACL', 'SETUSER', 'default', ...rules);
    await acl('resetchannels'); // Redis 7's default for a new ACL user: no channel at all
    const options = { ttl: 5_000, retryInterval: 10_000 };
    const a = await bootLocks({ url: server.url() }, options);
    const b = await bootLocks({ url: server.url() }, options);
    const refused = async (booted: Booted) => metricValue(booted.metrics, REFUSED);
    try {
      await waitFor('B refused', 5_000, async () => (await refused(b)) === 1);
      expect(b.logger.of('LockService').join('\n')).toContain('warn: release channel not subscribed');

      // B waits for A's lock; A's release publishes the wake-up, which Redis refuses inside the script. The
      // release must still succeed (the lock is gone either way), and B gets the lock at its next poll: no
      // later than the end of A's 1 s lease.
      const held = await a.locks.acquire('acl-poll', { ttl: 1_000 });
      const waiting = b.locks.acquire('acl-poll', { wait: 8_000 });
      await sleep(200);
      await expect(a.locks.release(held)).resolves.toBe(true);
      const polled = await waiting;
      expect(polled.fence).toBeGreaterThan(held.fence);
      await b.locks.release(polled);

      // The ACL is fixed: the SUBSCRIBE is sent again (1 s, then 2 s, ...) without a restart, and a release
      // wakes B although A's lease (30 s) and B's poll (10 s) are far off.
      await acl('allchannels');
      await waitFor('A and B accepted', 10_000, async () => (await refused(a)) + (await refused(b)) === 0);
      const long = await a.locks.acquire('acl-wake', { ttl: 30_000 });
      const started = Date.now();
      const woken = b.locks.acquire('acl-wake', { wait: 8_000 });
      await sleep(200);
      await a.locks.release(long);
      const lock = await woken;
      expect(Date.now() - started).toBeLessThan(5_000);
      await b.locks.release(lock);
    } finally {
      await Promise.all([a.module.close(), b.module.close()]);
      await server.stop();
    }
  }, 60_000);
});
