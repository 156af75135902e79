import fc from 'fast-check';
import { FallbackStore } from '@redwing/redis';
import { SlidingLogModel, slidingWindowRuns } from '../test/sliding-log.model';
import { LocalLimiter, type LocalEntry, type LocalLimitShape } from './local-limiter';

/**
 * The table's TTLs run on the real clock while these tests drive a simulated one; the limiter trims by its
 * own `now` and needs the TTLs only to free memory, so the model tests drop them.
 */
class SimulatedClockStore extends FallbackStore<LocalEntry> {
  override set(key: string, value: LocalEntry): boolean {
    return super.set(key, value);
  }
}

const limiter = (maxEntries = 1_000) => new LocalLimiter(new SimulatedClockStore({ maxEntries }));

describe('LocalLimiter', () => {
  it('sliding window matches the exact log model on every step (fast-check)', () => {
    fc.assert(
      fc.property(slidingWindowRuns, ({ points, duration, steps }) => {
        const local = limiter();
        const model = new SlidingLogModel(points, duration);
        const shape: LocalLimitShape = { algorithm: 'sliding-window', points, duration, blockDuration: 0 };
        let now = 1_000_000;
        for (const step of steps) {
          now += step.dt;
          const want = step.op === 'peek' ? model.peek(now) : model.consume(now, step.cost);
          const got = local.apply('k', shape, { op: step.op, cost: step.cost, now });
          expect({ step, got }).toEqual({ step, got: want });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('fixed window counts refused requests too and resets after the window', () => {
    const local = limiter();
    const shape: LocalLimitShape = {
      algorithm: 'fixed-window',
      points: 2,
      duration: 1_000,
      blockDuration: 0,
    };
    const t = Date.now();
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t }).allowed).toBe(true);
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t + 10 }).allowed).toBe(true);
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t + 20 })).toMatchObject({
      allowed: false,
      retryAfter: 980,
    });
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t + 1_000 }).allowed).toBe(true);
  });

  it('token bucket refills at points per duration', () => {
    const local = limiter();
    const shape: LocalLimitShape = {
      algorithm: 'token-bucket',
      points: 4,
      duration: 1_024,
      blockDuration: 0,
    };
    const t = Date.now();
    expect(local.apply('k', shape, { op: 'consume', cost: 3, now: t })).toEqual({
      allowed: true,
      remaining: 1,
      retryAfter: 0,
      reset: 768,
    });
    expect(local.apply('k', shape, { op: 'consume', cost: 2, now: t })).toEqual({
      allowed: false,
      remaining: 1,
      retryAfter: 256,
      reset: 768,
    });
    expect(local.apply('k', shape, { op: 'consume', cost: 2, now: t + 256 }).allowed).toBe(true);
  });

  it('blocks after a refusal for blockDuration', () => {
    const local = limiter();
    const shape: LocalLimitShape = {
      algorithm: 'token-bucket',
      points: 1,
      duration: 1_000,
      blockDuration: 5_000,
    };
    const t = Date.now();
    local.apply('k', shape, { op: 'consume', cost: 1, now: t });
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t + 1 })).toMatchObject({
      allowed: false,
      retryAfter: 5_000,
    });
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t + 2_000 })).toMatchObject({
      allowed: false,
      retryAfter: 3_001,
    });
    expect(local.apply('k', shape, { op: 'consume', cost: 1, now: t + 5_002 }).allowed).toBe(true);
  });

  it('gives every table entry a TTL: the time until the entry no longer matters', () => {
    // The TTL the limiter asks for is read where it is handed to the store: lru-cache's getRemainingTTL runs on
    // its own cached clock, which lags by more than a millisecond on a loaded machine (a flaky bound before).
    const asked = new Map<string, number | undefined>();
    class RecordingStore extends FallbackStore<LocalEntry> {
      override set(key: string, value: LocalEntry, ttl?: number): boolean {
        asked.set(key, ttl);
        return super.set(key, value, ttl);
      }
    }
    const store = new RecordingStore({ maxEntries: 100 });
    const local = new LocalLimiter(store);
    const t = Date.now();
    local.apply(
      'fw',
      { algorithm: 'fixed-window', points: 5, duration: 60_000, blockDuration: 0 },
      { op: 'consume', cost: 1, now: t },
    );
    local.apply(
      'sw',
      { algorithm: 'sliding-window', points: 5, duration: 30_000, blockDuration: 0 },
      { op: 'consume', cost: 1, now: t },
    );
    local.apply(
      'tb',
      { algorithm: 'token-bucket', points: 4, duration: 40_000, blockDuration: 0 },
      { op: 'consume', cost: 1, now: t },
    );
    const blocked = {
      algorithm: 'sliding-window' as const,
      points: 1,
      duration: 1_000,
      blockDuration: 20_000,
    };
    local.apply('b', blocked, { op: 'consume', cost: 1, now: t });
    local.apply('b', blocked, { op: 'consume', cost: 1, now: t });
    expect(Object.fromEntries(asked)).toEqual({
      fw: 60_000,
      sw: 30_000,
      tb: 10_000, // one token of four: a quarter of 40 s to be full again
      b: 1_000,
      'b:b': 20_000,
    });
    // And the store keeps them: every entry expires (none is kept until evicted).
    for (const key of asked.keys()) {
      const ttl = store.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(Number.isFinite(ttl)).toBe(true);
    }
  });

  it('stays within its entry bound however many clients arrive', () => {
    const store = new FallbackStore<LocalEntry>({ maxEntries: 500 });
    const local = new LocalLimiter(store);
    const shape: LocalLimitShape = {
      algorithm: 'sliding-window',
      points: 5,
      duration: 60_000,
      blockDuration: 1_000,
    };
    let max = 0;
    for (let i = 0; i < 20_000; i++) {
      local.apply(`client-${i}`, shape, { op: 'consume', cost: 1 });
      max = Math.max(max, store.size);
    }
    expect(max).toBe(500);
    expect(store.stats().evictions).toBe(20_000 - 500);
  });
});
