// Leased counting (counting: 'leased') through RateLimitService and RateLimitGuard on real Redis:
//   accuracy across instances   RELIABILITY.md "Rate limiting": 3 instances × 100 concurrent clients on one
//                               key admit the limit, never more, in every run (leasing: exactly the limit)
//   under-admission             bounded by the idle instances' unspent slices (≤ points / (2 × instances)
//                               each), and those come back within 2 × maxAgeMs (the give-back timer)
//   window end                  a stranded slice expires with its window and never leaks into the next one
//   Redis down mid-lease        slices are dropped, the insurance limiter decides at points / instances,
//                               critical limits refuse; leasing resumes when Redis answers
//   headers, metrics, block     a single instance's RateLimit header counts down exactly; decisions counted;
//                               a block on the instance that holds a slice refuses at once
import { Controller, Get, type ExecutionContext } from '@nestjs/common';
import { RateLimit, type RateLimitLimit } from '@redwing/rate-limit';
import { RedisServer, stopAll } from '../../../test/harness';
import { bootApp, bootService, counterValue, waitFor, type Booted, type BootedApp } from './helpers';

afterAll(() => stopAll());

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

const LIMIT = 50;

/** Redis options of the tests that are not about outages: timeouts a loaded machine does not trip. */
const RELAXED = (server: RedisServer) => ({
  url: server.url(),
  commandTimeout: 3_000,
  healthCheck: { interval: 1_000 },
});

/** Counted per `x-run` header, so each run has a fresh counter without flushing Redis under live slices. */
const byRun = (context: ExecutionContext) =>
  context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers['x-run'];

@Controller('leased')
class LeasedController {
  @Get('fixed-window')
  @RateLimit({ points: LIMIT, duration: 60_000, counting: 'leased', key: byRun })
  fixed() {
    return { ok: true };
  }

  @Get('countdown')
  @RateLimit({ name: 'countdown', points: 20, duration: 60_000, counting: 'leased' })
  countdown() {
    return { ok: true };
  }
}

describe('leased counting: accuracy across instances (RELIABILITY.md)', () => {
  let redis: RedisServer;
  const apps: BootedApp[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (let i = 0; i < 3; i++) {
      apps.push(
        // A generous command timeout: this is about accuracy, and a loaded machine must not trip the outage
        // path (an instance on its insurance limiter admits points / instances on its own, by design).
        await bootApp('fastify', RELAXED(redis), { limitAllRoutes: false, instances: 3 }, [LeasedController]),
      );
    }
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.app.close()));
  });

  it('3 instances × 100 concurrent clients on one key admit the limit, never more, in every run; stranded slices come back', async () => {
    const fetchRun = (base: string, run: number) =>
      fetch(`${base}/leased/fixed-window`, { headers: { 'x-run': `run-${run}` } }).then((r) => r.status);
    const burst: number[] = [];
    const total: number[] = [];
    for (let run = 0; run < 5; run++) {
      const codes = await Promise.all(
        apps.flatMap((a) => Array.from({ length: 100 }, () => fetchRun(a.base, run))),
      );
      expect(codes.filter((c) => c !== 200 && c !== 429)).toEqual([]);
      let admitted = codes.filter((c) => c === 200).length;
      burst.push(admitted);
      expect(admitted).toBeLessThanOrEqual(LIMIT);
      // A slow run (a loaded machine) can leave a slice on an instance whose requests were all decided; it
      // is given back within ~2 s and admitted then: every point of the window is admitted, never more.
      const stats = () =>
        JSON.stringify(apps.map((x) => ({ ...x.service.stats(), local: undefined, decisions: undefined })));
      await waitFor(
        `run ${run}: the window's points admitted`,
        8_000,
        async () => {
          for (const a of apps) if (admitted < LIMIT + 5 && (await fetchRun(a.base, run)) === 200) admitted++;
          return admitted >= LIMIT;
        },
        { intervalMs: 100, details: stats },
      );
      // Counted in Redis throughout (an instance that fell back to its insurance limiter would admit
      // points / instances more on its own: that is the outage behaviour, not leasing).
      expect(apps.map((x) => x.service.stats().switches.toLocal)).toEqual([0, 0, 0]);
      expect(admitted).toBe(LIMIT);
      total.push(admitted);
      for (const a of apps) expect(await fetchRun(a.base, run)).toBe(429);
    }
    expect(total).toEqual(Array(5).fill(LIMIT));
    // Usually the burst alone admits the limit (every instance serves until refused, so nothing is stranded).
    process.stdout.write(`leased accuracy: burst admitted ${burst.join(', ')} of ${LIMIT}\n`);
    for (const a of apps) expect(a.service.getMode()).toBe('redis');
    // Leasing did its job: most decisions were made without a round trip.
    const leases = apps.map((a) => a.service.stats().leases);
    const local = leases.reduce((s, l) => s + l.local, 0);
    const requests = leases.reduce((s, l) => s + l.requests, 0);
    expect(local).toBeGreaterThan(requests);
  }, 60_000);
});

describe('leased counting through the service', () => {
  let server: RedisServer;
  let a: Booted;
  let b: Booted;
  let n = 0;
  const key = () => `ip:10.77.0.${++n}`;

  beforeAll(async () => {
    server = await RedisServer.start();
    // Two instances: a slice is at most 1 / (2 × 2) of what is left.
    a = await bootService(RELAXED(server), { instances: 2 });
    b = await bootService(RELAXED(server), { instances: 2 });
  });

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
  });

  async function consumeUntilRefused(booted: Booted, k: string, limits: RateLimitLimit, max: number) {
    let admitted = 0;
    for (let i = 0; i < max; i++) {
      if (!(await booted.service.consume(k, { limits })).allowed) break;
      admitted++;
    }
    return admitted;
  }

  it("under-admission is bounded by an idle instance's unspent slice, which comes back by itself", async () => {
    const limits: RateLimitLimit = { name: 'strand', points: 40, duration: 60_000, counting: 'leased' };
    const k = key();
    const before = a.service.stats().leases;
    // A burst of 9 and one more consume: A ends holding part of a slice on any machine (see the next test).
    const burst = await Promise.all(Array.from({ length: 9 }, () => a.service.consume(k, { limits })));
    const admittedA =
      burst.filter((d) => d.allowed).length + ((await a.service.consume(k, { limits })).allowed ? 1 : 0);
    expect(admittedA).toBe(10);
    const afterA = a.service.stats().leases;
    const unspent = afterA.granted - before.granted - admittedA;
    // A now goes idle holding `unspent` points: B is refused that much early, and no more.
    expect(unspent).toBeGreaterThan(0);
    expect(unspent).toBeLessThanOrEqual(40 / (2 * 2));
    const admittedB = await consumeUntilRefused(b, k, limits, 100);
    // B is refused no earlier than A's slice accounts for (on a slow machine A's give-back timer may already
    // have run during B's loop, and B then admitted some of those points too: hence >=).
    expect(admittedA + admittedB + unspent).toBeGreaterThanOrEqual(40);
    // A's give-back timer returns the slice once it is maxAgeMs old (within ~2 s); B then gets the rest of it.
    await waitFor(
      'the idle slice given back',
      5_000,
      () => a.service.stats().leases.returned - before.returned >= unspent,
    );
    let late = 0;
    await waitFor('B admits the returned points', 5_000, async () => {
      late += await consumeUntilRefused(b, k, limits, 100);
      return admittedA + admittedB + late >= 40;
    });
    expect(late).toBeLessThanOrEqual(unspent);
    expect(admittedA + admittedB + late).toBe(40);
    expect(await consumeUntilRefused(b, k, limits, 5)).toBe(0);
  });

  it('a slice stranded at the end of a window expires with it and never leaks into the next window', async () => {
    const limits: RateLimitLimit = { name: 'expire', points: 40, duration: 1_000, counting: 'leased' };
    const k = key();
    // A holds unspent points whatever the machine's speed: a burst of 9 leaves A's next slice size at 8 (the
    // waiting requests are served by one lease of 8), and the one consume after it asks for at least half of
    // that (a slice halves at most once per lease), so A is granted more than it admits. Sequential consumes
    // alone grow a slice only when each round trip beats the 20 ms target, which a loaded machine misses.
    const burst = await Promise.all(Array.from({ length: 9 }, () => a.service.consume(k, { limits })));
    expect(burst.every((d) => d.allowed)).toBe(true);
    expect((await a.service.consume(k, { limits })).allowed).toBe(true);
    const redisKey = `redwing:ratelimit:fw:expire:40:1000:{${k}}`;
    expect(Number(await server.command('GET', redisKey))).toBeGreaterThan(10); // A holds unspent points
    await waitFor('the window ends', 3_000, async () => (await server.command('EXISTS', redisKey)) === 0);
    // A's slice was good for the old window only; B gets the whole new window, and A's slice stays unspent.
    expect(await consumeUntilRefused(b, k, limits, 60)).toBe(40);
    expect((await a.service.consume(k, { limits })).allowed).toBe(false);
  });

  it('a block on the instance holding a slice refuses at once; reward and delete are seen at the next lease', async () => {
    const limits: RateLimitLimit = { name: 'blocked', points: 100, duration: 60_000, counting: 'leased' };
    const k = key();
    for (let i = 0; i < 8; i++) await a.service.consume(k, { limits });
    await a.service.block(k, 10_000, { limits });
    const refused = await a.service.consume(k, { limits });
    expect(refused).toMatchObject({ allowed: false, mode: 'redis' });
    expect(refused.retryAfter).toBeGreaterThan(5_000);
    expect(await a.service.delete(k, { limits })).toBe(true);
    expect((await a.service.consume(k, { limits })).allowed).toBe(true);
  });

  it("get() reports what Redis has not handed out; remaining on a decision is this instance's view", async () => {
    const limits: RateLimitLimit = { name: 'view', points: 30, duration: 60_000, counting: 'leased' };
    const k = key();
    const before = a.service.stats().leases;
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push((await a.service.consume(k, { limits })).limits[0].remaining);
    // One instance alone: remaining counts down exactly, slices or not.
    expect(seen).toEqual([29, 28, 27, 26, 25, 24]);
    const after = a.service.stats().leases;
    const peek = await b.service.get(k, { limits });
    // get() counts A's unspent slice as used: it is not B's to admit.
    expect(peek.limits[0].remaining).toBe(30 - (after.granted - before.granted));
    expect(peek.limits[0].remaining).toBeLessThanOrEqual(24);
  });

  it("refuses counting: 'leased' on a sliding window or token bucket (RateLimitConfigError)", () => {
    for (const algorithm of ['sliding-window', 'token-bucket'] as const) {
      expect(() =>
        a.service.consume(key(), { limits: { points: 5, algorithm, counting: 'leased' } }),
      ).toThrow(/counting.*'leased' works with the fixed-window algorithm only/);
    }
  });
});

describe('leased counting when Redis goes down mid-lease', () => {
  it('drops the slices, limits in memory at points / instances, fails critical limits closed, and leases again when Redis is back', async () => {
    const server = await RedisServer.start();
    const booted = await bootService({ url: server.url() }, { instances: 2 });
    const limits: RateLimitLimit = { name: 'outage', points: 20, duration: 60_000, counting: 'leased' };
    const critical: RateLimitLimit = { ...limits, name: 'outage-critical', critical: true };
    try {
      for (let i = 0; i < 5; i++)
        expect((await booted.service.consume('ip:10.66.0.1', { limits })).allowed).toBe(true);
      expect(booted.service.stats().leases.entries).toBe(1);
      await server.kill('SIGKILL');
      await waitFor('the client sees the outage', 5_000, () => !booted.manager.get().isAvailable());
      const down = [];
      for (let i = 0; i < 15; i++) down.push(await booted.service.consume('ip:10.66.0.1', { limits }));
      expect(down.filter((d) => d.allowed)).toHaveLength(10);
      expect(down.every((d) => d.mode === 'local')).toBe(true);
      expect(booted.service.stats()).toMatchObject({
        mode: 'local',
        switches: { toLocal: 1 },
        leases: { entries: 0 },
      });
      expect(await booted.service.consume('ip:10.66.0.1', { limits: critical })).toMatchObject({
        allowed: false,
        unavailable: true,
      });

      await server.restart();
      await waitFor('Redis answers again', 10_000, async () => {
        if (!booted.manager.get().isAvailable()) return false;
        return (await booted.service.consume('ip:10.66.0.2', { limits })).mode === 'redis';
      });
      expect(booted.service.getMode()).toBe('redis');
      const fresh = [];
      for (let i = 0; i < 25; i++) fresh.push(await booted.service.consume('ip:10.66.0.3', { limits }));
      expect(fresh.filter((d) => d.allowed)).toHaveLength(20);
      expect(fresh.every((d) => d.mode === 'redis')).toBe(true);
    } finally {
      await booted.module.close();
      await server.stop();
    }
  }, 30_000);
});

describe('leased counting through the guard', () => {
  it('one instance: the RateLimit header counts down exactly, the 21st request is a 429, decisions are counted', async () => {
    const server = await RedisServer.start();
    const booted = await bootApp('express', { url: server.url() }, { limitAllRoutes: false }, [
      LeasedController,
    ]);
    try {
      const remaining = [];
      const codes = [];
      let last: Response | undefined;
      for (let i = 0; i < 22; i++) {
        last = await fetch(`${booted.base}/leased/countdown`);
        codes.push(last.status);
        if (last.status === 200) remaining.push(last.headers.get('ratelimit'));
      }
      expect(codes).toEqual([...Array(20).fill(200), 429, 429]);
      expect(remaining).toEqual(Array.from({ length: 20 }, (_, i) => `"countdown";r=${19 - i};t=60`));
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(
        await counterValue(booted.metrics, 'redwing_ratelimit_decisions_total', {
          result: 'allowed',
          mode: 'redis',
        }),
      ).toBe(20);
      expect(
        await counterValue(booted.metrics, 'redwing_ratelimit_decisions_total', {
          result: 'denied',
          mode: 'redis',
        }),
      ).toBe(2);
      // Some of them without a round trip (the second 429 too: the refusal is remembered).
      expect(booted.service.stats().leases.local).toBeGreaterThan(0);
      expect(booted.service.stats().leases.requests).toBeLessThan(22);
    } finally {
      await booted.app.close();
      await server.stop();
    }
  });
});
