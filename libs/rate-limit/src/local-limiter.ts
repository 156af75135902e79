import type { FallbackStore } from '@redwing/redis';
import type { RateLimitAlgorithm } from './rate-limit.interfaces';

/** What a call does to a limit (the same four operations the Lua scripts implement). */
export type LimitOp = 'consume' | 'peek' | 'penalty' | 'reward';

/** The outcome of one operation on one limit, in either store. */
export interface RawLimitState {
  allowed: boolean;
  remaining: number;
  /** ms until the requested cost fits (0 when allowed). */
  retryAfter: number;
  /** ms until the quota is fully restored. */
  reset: number;
}

/** The shape of a limit as the local limiter needs it. */
export interface LocalLimitShape {
  algorithm: RateLimitAlgorithm;
  /** Points this instance may grant on its own (the limit divided by the instance count). */
  points: number;
  duration: number;
  blockDuration: number;
}

/** One operation on a limit: what it does, its points, and the time it happens at. */
export interface LocalCall {
  op: LimitOp;
  cost: number;
  /** Time in ms. @default Date.now() (a test passes its own clock) */
  now?: number;
}

/** Entries of the local table; short field names keep the byte estimate small. */
export type LocalEntry =
  /** fixed window: count, window end (ms) */
  | { c: number; e: number }
  /** sliding window: times (ms) of the counted points, oldest first */
  | { t: number[] }
  /** token bucket: tokens, last refill (ms) */
  | { k: number; ts: number }
  /** block marker: end (ms) */
  | { b: number };

const EPS = 1e-9;

/**
 * The in-memory insurance limiter used while Redis is unavailable: the same three algorithms and four
 * operations as the Redis scripts, over a bounded table (a `FallbackStore`: entries + bytes, LRU, TTL per
 * entry, no timers). An evicted entry only forgets a client's count, so the table stays bounded however
 * many distinct clients arrive.
 */
export class LocalLimiter {
  constructor(private readonly store: FallbackStore<LocalEntry>) {}

  /** Apply `call.op` to the limit stored under `key`. */
  apply(key: string, shape: LocalLimitShape, call: LocalCall): RawLimitState {
    const { op } = call;
    const now = call.now ?? Date.now();
    const at: Required<LocalCall> = { op, cost: call.cost, now };
    if (op === 'consume' || op === 'peek') {
      const block = this.store.get(`${key}:b`) as { b: number } | undefined;
      if (block && block.b > now) {
        const left = block.b - now;
        return { allowed: false, remaining: 0, retryAfter: left, reset: left };
      }
    }
    let state: RawLimitState;
    switch (shape.algorithm) {
      case 'fixed-window':
        state = this.fixedWindow(key, shape, at);
        break;
      case 'sliding-window':
        state = this.slidingWindow(key, shape, at);
        break;
      default:
        state = this.tokenBucket(key, shape, at);
    }
    if (op === 'consume' && !state.allowed && shape.blockDuration > 0) {
      this.store.set(`${key}:b`, { b: now + shape.blockDuration }, shape.blockDuration);
      state.retryAfter = Math.max(state.retryAfter, shape.blockDuration);
    }
    return state;
  }

  /** Forget a client's count (and block). */
  delete(key: string): boolean {
    const a = this.store.delete(key);
    const b = this.store.delete(`${key}:b`);
    return a || b;
  }

  /** Block a client for `duration` ms. */
  block(key: string, duration: number, now = Date.now()): void {
    this.store.set(`${key}:b`, { b: now + duration }, duration);
  }

  private fixedWindow(
    key: string,
    shape: LocalLimitShape,
    { op, cost, now }: Required<LocalCall>,
  ): RawLimitState {
    let entry = this.store.get(key) as { c: number; e: number } | undefined;
    if (!entry || entry.e <= now) entry = { c: 0, e: now + shape.duration };
    let allowed = true;
    let retryAfter = 0;
    const reset = entry.e - now;
    if (op === 'consume') {
      // Like rate-limiter-flexible's fixed window: count first, then compare, so refused requests count too.
      entry.c += cost;
      if (entry.c > shape.points) {
        allowed = false;
        retryAfter = reset;
      }
    } else if (op === 'peek') {
      if (entry.c + 1 > shape.points) {
        allowed = false;
        retryAfter = reset;
      }
    } else if (op === 'penalty') entry.c += cost;
    else entry.c = Math.max(0, entry.c - cost);
    if (op !== 'peek') {
      if (entry.c > 0) this.store.set(key, entry, reset);
      else this.store.delete(key);
    }
    return {
      allowed,
      remaining: Math.max(0, shape.points - entry.c),
      retryAfter,
      reset: entry.c > 0 ? reset : 0,
    };
  }

  private slidingWindow(
    key: string,
    shape: LocalLimitShape,
    { op, cost, now }: Required<LocalCall>,
  ): RawLimitState {
    const stored = this.store.get(key) as { t: number[] } | undefined;
    const times = stored ? stored.t : [];
    let expired = 0;
    while (expired < times.length && times[expired] <= now - shape.duration) expired++;
    if (expired > 0) times.splice(0, expired);
    // ms until the oldest `need` points have left the window
    const waitFor = (need: number) => times[need - 1] + shape.duration - now;
    let allowed = true;
    let retryAfter = 0;
    if (op === 'consume') {
      if (times.length + cost <= shape.points) for (let i = 0; i < cost; i++) times.push(now);
      else {
        allowed = false;
        retryAfter = waitFor(times.length + cost - shape.points);
      }
    } else if (op === 'peek') {
      if (times.length + 1 > shape.points) {
        allowed = false;
        retryAfter = waitFor(times.length + 1 - shape.points);
      }
    } else if (op === 'penalty') {
      for (let i = 0; i < cost; i++) times.push(now);
    } else {
      times.splice(Math.max(0, times.length - cost));
    }
    const reset = times.length > 0 ? times[times.length - 1] + shape.duration - now : 0;
    if (op !== 'peek') {
      if (times.length > 0) this.store.set(key, { t: times }, reset);
      else this.store.delete(key);
    }
    return { allowed, remaining: Math.max(0, shape.points - times.length), retryAfter, reset };
  }

  private tokenBucket(
    key: string,
    shape: LocalLimitShape,
    { op, cost, now }: Required<LocalCall>,
  ): RawLimitState {
    const rate = shape.points / shape.duration;
    const stored = this.store.get(key) as { k: number; ts: number } | undefined;
    let tokens = stored ? stored.k : shape.points;
    const ts = stored ? stored.ts : now;
    if (now > ts) tokens = Math.min(shape.points, tokens + (now - ts) * rate);
    let allowed = true;
    let retryAfter = 0;
    if (op === 'consume') {
      if (tokens + EPS >= cost) tokens -= cost;
      else {
        allowed = false;
        retryAfter = Math.ceil((cost - tokens) / rate);
      }
    } else if (op === 'peek') {
      if (tokens + EPS < 1) {
        allowed = false;
        retryAfter = Math.ceil((1 - tokens) / rate);
      }
    } else if (op === 'penalty') tokens -= cost;
    else tokens = Math.min(shape.points, tokens + cost);
    const reset = tokens + EPS < shape.points ? Math.ceil((shape.points - tokens) / rate) : 0;
    if (op !== 'peek') {
      if (reset > 0) this.store.set(key, { k: tokens, ts: now }, reset);
      else this.store.delete(key);
    }
    return { allowed, remaining: Math.max(0, Math.floor(tokens + EPS)), retryAfter, reset };
  }
}
