// The rate limiter's Lua scripts against real Redis, driven with an explicit clock (ARGV `now`): every
// failure code, the token-bucket arithmetic, and a fast-check property test of the sliding window against an
// exact log model.
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { RedisScriptError } from '@redwing/redis';
import { RateLimitScriptError } from '@redwing/rate-limit';
import { RedisServer, stopAll } from '../../../test/harness';
import { RedisLimitStore } from '../src/redis-limit-store';
import { consumeSlidingWindowScript } from '../src/scripts/consume-sliding-window.script';
import { consumeTokenBucketScript } from '../src/scripts/consume-token-bucket.script';
import { SlidingLogModel, slidingWindowRuns } from './sliding-log.model';

type Reply = [number, number, number, number];
type Script = (...args: Array<string | number>) => Promise<Reply>;

let server: RedisServer;
let redis: Redis;
let sw: Script;
let tb: Script;
let n = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  await redis.connect();
  // Plain EVAL, so a failure code comes back as the raw reply (defineScripts would throw on it).
  const script =
    (s: typeof consumeSlidingWindowScript): Script =>
    (...args) =>
      redis.eval(s.lua, s.numberOfKeys, ...args) as Promise<Reply>;
  sw = script(consumeSlidingWindowScript);
  tb = script(consumeTokenBucketScript);
});

afterAll(async () => {
  redis?.disconnect();
  await stopAll();
});

const keys = () => {
  const base = `t:{c${++n}}`;
  return [base, `${base}:b`] as const;
};

/**
 * Calls `script` once per `bad` entry: the `valid` arguments with ARGV[index] replaced by the bad value. Each
 * call must return {-1, index} and leave no key behind.
 */
async function expectEachRefused(script: Script, valid: unknown[], bad: Array<[number, unknown]>) {
  const k = keys();
  for (const [index, value] of bad) {
    const args: unknown[] = [...valid];
    args[index - 1] = value;
    expect([index, await script(k[0], k[1], ...(args as Array<string | number>))]).toEqual([
      index,
      [-1, index],
    ]);
  }
  expect(await redis.exists(k[0], k[1])).toBe(0);
}

describe('consume-sliding-window', () => {
  // op, points, duration, cost, blockDuration, nonce, now
  const call = (
    k: readonly [string, string],
    op: string,
    points: number,
    duration: number,
    cost: number,
    now: number,
    block = 0,
  ) => sw(k[0], k[1], op, points, duration, cost, block, `n${++n}`, now);

  it('returns {-1, n} for each invalid argument', async () => {
    const valid = ['consume', 3, 1_000, 1, 0, 'nonce', 5];
    const bad: Array<[number, unknown]> = [
      [1, 'drop'],
      [2, 0],
      [2, 1.5],
      [3, 0],
      [3, 'x'],
      [4, -1],
      [4, 4], // cost above points can never be admitted
      [5, -1],
      [6, ''],
      [7, -5],
      [7, 'soon'],
    ];
    await expectEachRefused(sw, valid, bad);
  });

  it('admits up to points in any window, expires the log with its newest entry, uses the server clock by default', async () => {
    const k = keys();
    expect(await call(k, 'consume', 2, 1_000, 1, 10_000)).toEqual([1, 1, 0, 1_000]);
    expect(await call(k, 'consume', 2, 1_000, 1, 10_400)).toEqual([1, 0, 0, 1_000]);
    // full: the oldest point leaves at 11_000
    expect(await call(k, 'consume', 2, 1_000, 1, 10_500)).toEqual([0, 0, 500, 900]);
    expect(await call(k, 'peek', 2, 1_000, 0, 10_500)).toEqual([0, 0, 500, 900]);
    expect(await call(k, 'consume', 2, 1_000, 1, 11_000)).toEqual([1, 0, 0, 1_000]);
    const ttl = await redis.pttl(k[0]);
    expect(ttl).toBeGreaterThan(900);
    expect(ttl).toBeLessThanOrEqual(1_000);

    const live = keys();
    const [allowed] = await sw(live[0], live[1], 'consume', 2, 60_000, 1, 0, 'x', '');
    expect(allowed).toBe(1);
    const [, score] = await redis.zrange(live[0], '0', '-1', 'WITHSCORES');
    expect(Math.abs(Number(score) - Date.now())).toBeLessThan(5_000);
  });

  it('penalty counts without checking, reward removes the newest points and deletes an empty log', async () => {
    const k = keys();
    await call(k, 'consume', 3, 1_000, 1, 0);
    expect(await call(k, 'penalty', 3, 1_000, 4, 100)).toEqual([1, 0, 0, 1_000]);
    expect((await call(k, 'consume', 3, 1_000, 1, 200))[0]).toBe(0);
    expect(await call(k, 'reward', 3, 1_000, 4, 200)).toEqual([1, 2, 0, 800]);
    expect(await redis.zcard(k[0])).toBe(1);
    expect(await call(k, 'reward', 3, 1_000, 5, 300)).toEqual([1, 3, 0, 0]);
    expect(await redis.exists(k[0])).toBe(0);
  });

  it('sets the block marker with a TTL on a refusal and refuses while it lives', async () => {
    const k = keys();
    await call(k, 'consume', 1, 1_000, 1, 0, 30_000);
    const refused = await call(k, 'consume', 1, 1_000, 1, 10, 30_000);
    expect(refused.slice(0, 3)).toEqual([0, 0, 30_000]);
    const ttl = await redis.pttl(k[1]);
    expect(ttl).toBeGreaterThan(29_000);
    // Still blocked long after the window has moved on.
    const blocked = await call(k, 'consume', 1, 1_000, 1, 5_000, 30_000);
    expect(blocked[0]).toBe(0);
    expect(blocked[2]).toBeGreaterThan(29_000);
  });

  it('matches an exact log model on every step (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(slidingWindowRuns, async ({ points, duration, steps }) => {
        const k = keys();
        const model = new SlidingLogModel(points, duration);
        let now = 1_000_000;
        for (const step of steps) {
          now += step.dt;
          const want = step.op === 'peek' ? model.peek(now) : model.consume(now, step.cost);
          // The log's PEXPIRE runs on Redis's real clock while this test drives a simulated one, so each
          // step reads the TTL the script set (it must equal `reset`) and then removes it in the same MULTI.
          const cost = step.op === 'peek' ? 0 : step.cost;
          const [[, got], [, ttl]] = (await redis
            .multi()
            .eval(
              consumeSlidingWindowScript.lua,
              consumeSlidingWindowScript.numberOfKeys,
              k[0],
              k[1],
              step.op,
              points,
              duration,
              cost,
              0,
              `n${++n}`,
              now,
            )
            .pttl(k[0])
            .persist(k[0])
            .exec()) as [[null, Reply], [null, number]];
          expect({ step, now, got }).toEqual({
            step,
            now,
            got: [want.allowed ? 1 : 0, want.remaining, want.retryAfter, want.reset],
          });
          if (step.op !== 'peek') {
            // Redis's clock runs on inside the MULTI: a few ms on a loaded machine (10 allowed), and a TTL of
            // only a few ms may run out before PTTL reads it (-2).
            const SLACK = 10;
            const ttlOk =
              want.reset > 0
                ? (ttl <= want.reset && ttl >= want.reset - SLACK) || (ttl === -2 && want.reset <= SLACK)
                : ttl === -2;
            expect({ step, reset: want.reset, ttl, ttlOk }).toMatchObject({ ttlOk: true });
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('consume-token-bucket', () => {
  // op, points, duration, cost, blockDuration, now
  const call = (
    k: readonly [string, string],
    op: string,
    points: number,
    duration: number,
    cost: number,
    now: number,
    block = 0,
  ) => tb(k[0], k[1], op, points, duration, cost, block, now);

  it('returns {-1, n} for each invalid argument', async () => {
    const valid = ['consume', 3, 1_000, 1, 0, 5];
    const bad: Array<[number, unknown]> = [
      [1, 'take'],
      [2, 0],
      [3, -3],
      [4, 1.2],
      [4, 9],
      [5, 'x'],
      [6, 'later'],
    ];
    await expectEachRefused(tb, valid, bad);
  });

  // Durations are powers of two so the refill rate is exact in binary floating point.
  it('allows a burst of points, refills at points/duration, and expires when it would be full', async () => {
    const k = keys();
    // 4 tokens, one every 256 ms
    expect(await call(k, 'consume', 4, 1_024, 3, 0)).toEqual([1, 1, 0, 768]);
    const ttl = await redis.pttl(k[0]);
    expect(ttl).toBeGreaterThan(700);
    expect(ttl).toBeLessThanOrEqual(768);
    expect(await call(k, 'consume', 4, 1_024, 2, 0)).toEqual([0, 1, 256, 768]);
    expect(await call(k, 'consume', 4, 1_024, 2, 256)).toEqual([1, 0, 0, 1_024]);
    expect(await call(k, 'peek', 4, 1_024, 0, 300)).toEqual([0, 0, 212, 980]);
    // Full again after a whole duration: the hash is deleted rather than kept.
    expect(await call(k, 'consume', 4, 1_024, 0, 1_280)).toEqual([1, 4, 0, 0]);
    expect(await redis.exists(k[0])).toBe(0);
  });

  it('penalty can go into debt; reward fills up to capacity', async () => {
    const k = keys();
    expect(await call(k, 'penalty', 2, 1_024, 4, 0)).toEqual([1, 0, 0, 2_048]);
    expect(await call(k, 'consume', 2, 1_024, 1, 512)).toEqual([0, 0, 1_024, 1_536]);
    expect(await call(k, 'reward', 2, 1_024, 10, 512)).toEqual([1, 2, 0, 0]);
    expect(await redis.exists(k[0])).toBe(0);
  });

  it('blocks after a refusal for blockDuration', async () => {
    const k = keys();
    await call(k, 'consume', 1, 65_536, 1, 0, 100_000);
    expect((await call(k, 'consume', 1, 65_536, 1, 1, 100_000)).slice(0, 3)).toEqual([0, 0, 100_000]);
    const ttl = await redis.pttl(k[1]);
    expect(ttl).toBeGreaterThan(99_000);
    expect(ttl).toBeLessThanOrEqual(100_000);
    // A full bucket does not help while the block lives.
    const blocked = await call(k, 'consume', 1, 65_536, 1, 70_000, 100_000);
    expect(blocked[0]).toBe(0);
    expect(blocked[2]).toBeGreaterThan(99_000);
  });
});

describe('RedisLimitStore', () => {
  it("turns a failure code into RateLimitScriptError (caused by the kit's RedisScriptError) for both scripts", async () => {
    const store = new RedisLimitStore(redis);
    for (const algorithm of ['sliding-window', 'token-bucket'] as const) {
      const k = keys();
      // points 0 is refused by the script's argument check: {-1, 2}
      const limit = { algorithm, points: 0, duration: 1_000, blockDuration: 0, keyBase: k[0] };
      const err: unknown = await store.apply(limit, k[0], 'consume', 1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitScriptError);
      expect(err).toMatchObject({ code: -1, cause: expect.any(RedisScriptError) });
      expect(await redis.exists(k[0], k[1])).toBe(0);
    }
  });
});
