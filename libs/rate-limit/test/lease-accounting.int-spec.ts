// Leased counting's accounting against real Redis: several LeaseCounters (one per simulated instance) on one
// key, driven by fast-check through any interleaving of requests (one at a time and concurrent bursts),
// clock advances (slices ageing out), idle give-backs and window boundaries. The lease script runs on a real
// redis-server; only the instances' clock is simulated (Redis keeps its own), so a window boundary is the
// counter's deletion plus a clock jump past every slice's window end.
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { RedisServer, stopAll } from '../../../test/harness';
import { DEFAULT_LEASE_TUNING, LeaseCounter, type LeaseLimit } from '../src/lease-counter';
import { RedisLimitStore } from '../src/redis-limit-store';

let server: RedisServer;
let redis: Redis;
let store: RedisLimitStore;
let n = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  await redis.connect();
  store = new RedisLimitStore(redis);
});

afterAll(async () => {
  redis?.disconnect();
  await stopAll();
});

type Cmd =
  | { t: 'consume'; i: number; cost: number }
  | { t: 'burst'; calls: Array<{ i: number; cost: number }> }
  | { t: 'advance'; ms: number }
  | { t: 'sweep'; i: number }
  | { t: 'settle' }
  | { t: 'rollover' };

const INSTANCES = 3;
const call = fc.record({
  i: fc.integer({ min: 0, max: INSTANCES - 1 }),
  cost: fc.integer({ min: 1, max: 3 }),
});
const command: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: call.map((c) => ({ t: 'consume' as const, ...c })) },
  {
    weight: 3,
    arbitrary: fc
      .array(call, { minLength: 2, maxLength: 12 })
      .map((calls) => ({ t: 'burst' as const, calls })),
  },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 1_500 }).map((ms) => ({ t: 'advance' as const, ms })) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: INSTANCES - 1 }).map((i) => ({ t: 'sweep' as const, i })),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'settle' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'rollover' as const }) },
);

describe('leased counting (fast-check, real Redis)', () => {
  it('never admits more than the limit in a window, and loses no point once slices are given back, for any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(command, { minLength: 1, maxLength: 40 }),
        async (points, share, cmds) => {
          const key = `lease-prop:{k${++n}}`;
          // 10 minutes: the simulated clock (at most 40 × 1.5 s of advances) never outlives Redis's window.
          const limit: LeaseLimit = { points, duration: 600_000, blockDuration: 0 };
          let now = 1_000_000;
          const instances = Array.from(
            { length: INSTANCES },
            () => new LeaseCounter(store, { ...DEFAULT_LEASE_TUNING, share, maxEntries: 100 }, () => now),
          );
          let admitted = 0;
          const consume = async (i: number, cost: number) => {
            const c = Math.min(cost, points);
            const state = await instances[i].consume(limit, key, c);
            if (state.allowed) admitted += c;
            expect(state.remaining).toBeGreaterThanOrEqual(0);
            expect(admitted).toBeLessThanOrEqual(points);
          };
          /** Every instance gives its slices back; then Redis has counted exactly what was admitted. */
          const settle = async () => {
            for (const inst of instances) await inst.giveBackIdle(true);
            const counted = Number((await redis.get(key)) ?? 0);
            expect(counted).toBe(admitted);
            expect(admitted).toBeLessThanOrEqual(points);
          };
          for (const cmd of cmds) {
            switch (cmd.t) {
              case 'consume':
                await consume(cmd.i, cmd.cost);
                break;
              case 'burst':
                await Promise.all(cmd.calls.map((c) => consume(c.i, c.cost)));
                break;
              case 'advance':
                now += cmd.ms;
                break;
              case 'sweep':
                await instances[cmd.i].giveBackIdle();
                break;
              case 'settle':
                await settle();
                break;
              case 'rollover':
                // The window ends with whatever slices the instances still hold (they expire with it).
                expect(admitted).toBeLessThanOrEqual(points);
                await redis.del(key);
                now += limit.duration + 1;
                admitted = 0;
                break;
            }
          }
          await settle();
          await redis.del(key);
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);

  it('with every instance busy until refused, admits exactly the limit (no stranded slice)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 6 }),
        async (points, share) => {
          const key = `lease-busy:{k${++n}}`;
          const limit: LeaseLimit = { points, duration: 600_000, blockDuration: 0 };
          const instances = Array.from(
            { length: INSTANCES },
            () => new LeaseCounter(store, { ...DEFAULT_LEASE_TUNING, share, maxEntries: 100 }),
          );
          let admitted = 0;
          // Each instance keeps serving (10 in flight) until it is refused; bounded by 10 × points calls.
          await Promise.all(
            instances.flatMap((inst) =>
              Array.from({ length: 10 }, async () => {
                for (let k = 0; k <= points; k++) {
                  if (!(await inst.consume(limit, key, 1)).allowed) return;
                  admitted++;
                }
              }),
            ),
          );
          expect(admitted).toBe(points);
          await redis.del(key);
        },
      ),
      { numRuns: 25 },
    );
  }, 60_000);
});

describe('the lease table', () => {
  it('stays bounded however many keys lease (the oldest lease is dropped, its points expire with the window)', async () => {
    const limit: LeaseLimit = { points: 5, duration: 60_000, blockDuration: 0 };
    const counter = new LeaseCounter(store, { ...DEFAULT_LEASE_TUNING, share: 1, maxEntries: 50 });
    const run = ++n;
    for (let i = 0; i < 400; i++) {
      expect((await counter.consume(limit, `lease-bound:${run}:{${i}}`, 1)).allowed).toBe(true);
      expect(counter.size).toBeLessThanOrEqual(50);
    }
    expect(counter.stats()).toMatchObject({ entries: 50, requests: 400, granted: 400 });
  });
});

describe('the lease script', () => {
  const limit: LeaseLimit = { points: 10, duration: 60_000, blockDuration: 0 };
  const args = { cost: 1, want: 4, share: 1, giveBack: 0, giveBackAt: -2 };

  it('gives points back only into the window they were leased from', async () => {
    const key = `lease-window:{k${++n}}`;
    const [granted, , , expireAt] = await store.lease(limit, key, args);
    expect(granted).toBe(4);
    // Another window (the counter expired and was created again): the give-back is ignored.
    await redis.del(key);
    await new Promise((r) => setTimeout(r, 3));
    const [, freeNew, , expireNew] = await store.lease(limit, key, args);
    expect(expireNew).not.toBe(expireAt);
    expect(freeNew).toBe(6);
    const [, freeAfter] = await store.lease(limit, key, {
      ...args,
      cost: 0,
      want: 0,
      giveBack: 3,
      giveBackAt: expireAt,
    });
    expect(freeAfter).toBe(6);
    expect(await redis.get(key)).toBe('4');
    // The same window: taken back.
    const [, freeBack] = await store.lease(limit, key, {
      ...args,
      cost: 0,
      want: 0,
      giveBack: 3,
      giveBackAt: expireNew,
    });
    expect(freeBack).toBe(9);
    expect(await redis.get(key)).toBe('1');
  });

  it('caps a slice at free / share, refuses without counting, and blocks once like rate-limiter-flexible', async () => {
    const key = `lease-cap:{k${++n}}`;
    expect((await store.lease(limit, key, { ...args, want: 100, share: 4 }))[0]).toBe(2); // floor(10 / 4)
    expect((await store.lease(limit, key, { ...args, want: 100, share: 1 }))[0]).toBe(8);
    const refused = await store.lease(limit, key, args);
    expect(refused[0]).toBe(0);
    expect(await redis.get(key)).toBe('10');
    const blocking: LeaseLimit = { ...limit, blockDuration: 30_000 };
    const blocked = await store.lease(blocking, key, args);
    expect(blocked[0]).toBe(0);
    expect(blocked[2]).toBe(30_000); // the block's, not the window's rest
    expect(await redis.get(key)).toBe('11');
    const ttl = await redis.pttl(key);
    expect(ttl).toBeLessThanOrEqual(30_000);
    // A second refusal does not extend the block.
    await store.lease(blocking, key, args);
    expect(await redis.pttl(key)).toBeLessThanOrEqual(ttl);
  });

  it('a give-back alone creates no counter', async () => {
    const key = `lease-none:{k${++n}}`;
    const reply = await store.lease(limit, key, { ...args, cost: 0, want: 0, giveBack: 2, giveBackAt: 123 });
    expect(reply).toEqual([0, 10, 0, -2]);
    expect(await redis.exists(key)).toBe(0);
  });

  it('answers {-1, n} for an invalid argument (RateLimitScriptError)', async () => {
    await expect(store.lease(limit, `lease-bad:{k${++n}}`, { ...args, want: 0 })).rejects.toMatchObject({
      name: 'RateLimitScriptError',
    });
  });
});
