import { randomBytes } from 'node:crypto';
import { defineScripts, RedisScriptError, type RedisConnection, type ScriptCallers } from '@redwing/redis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { LimitOp, RawLimitState } from './local-limiter';
import { RateLimitScriptError } from './rate-limit.errors';
import type { RateLimitAlgorithm } from './rate-limit.interfaces';
import { consumeSlidingWindowScript } from './scripts/consume-sliding-window.script';
import { consumeTokenBucketScript } from './scripts/consume-token-bucket.script';
import { leaseFixedWindowScript, type LeaseReply } from './scripts/lease-fixed-window.script';
import type { LimiterReply } from './scripts/limiter-preamble';
import type { LeaseLimit, LeaseStore } from './lease-counter';

/** The Lua scripts of this lib, called through `defineScripts` (EVALSHA, EVAL on NOSCRIPT). */
const RATE_LIMIT_SCRIPTS = {
  slidingWindow: consumeSlidingWindowScript,
  tokenBucket: consumeTokenBucketScript,
  leaseFixedWindow: leaseFixedWindowScript,
};

/** What the store needs to know about a limit. */
export interface StoreLimit {
  algorithm: RateLimitAlgorithm;
  points: number;
  duration: number;
  blockDuration: number;
  /** `<prefix>:ratelimit:<tag>:<name>:<points>:<duration>` — the key of a client is `<keyBase>:{<subject>}`. */
  keyBase: string;
  /** The rate-limiter-flexible instance of a fixed-window limit, created on first use. */
  fixed?: RateLimiterRedis;
}

/**
 * Counts in Redis: fixed windows through rate-limiter-flexible's `RateLimiterRedis` (its own Lua counter with
 * `EX`), sliding windows and token buckets through this lib's scripts. Every operation is one round trip on
 * the shared, breaker-protected connection; every key it writes carries a TTL. Errors are the connection's
 * (`RedisUnavailableError`, `RedisCommandTimeoutError`, reply errors); the service decides what to do.
 */
export class RedisLimitStore implements LeaseStore {
  private readonly scripts: ScriptCallers<typeof RATE_LIMIT_SCRIPTS>;
  private readonly noncePrefix = randomBytes(6).toString('base64url');
  private nonceCounter = 0;

  /**
   * rate-limiter-flexible defines its `rlflxIncr` with `defineCommand` in its constructor, and ioredis throws
   * from an auto-pipeline's exec callback (an uncaught TypeError) for a command defined while that pipeline is
   * pending. So one throw-away instance is built here, before the connection starts; later instances redefine
   * the same script, which is harmless. This lib's own scripts need nothing of the kind (`defineScripts`).
   */
  constructor(private readonly connection: RedisConnection) {
    this.scripts = defineScripts(connection, RATE_LIMIT_SCRIPTS);
    new RateLimiterRedis({ storeClient: connection, points: 1, duration: 1 });
  }

  /** Apply `op` with `cost` points to the client key `key` (`<keyBase>:{<subject>}`). */
  apply(limit: StoreLimit, key: string, op: LimitOp, cost: number): Promise<RawLimitState> {
    if (limit.algorithm === 'fixed-window') return this.fixedWindow(limit, key, op, cost);
    const keys = [key, `${key}:b`];
    const reply =
      limit.algorithm === 'sliding-window'
        ? this.scripts.slidingWindow(keys, [
            op,
            limit.points,
            limit.duration,
            cost,
            limit.blockDuration,
            this.nonce(),
            '',
          ])
        : this.scripts.tokenBucket(keys, [op, limit.points, limit.duration, cost, limit.blockDuration, '']);
    return reply.then(rawState, scriptFailure);
  }

  /**
   * A slice of a fixed window's points for leased counting, on rate-limiter-flexible's counter of the same
   * client key (`lease-fixed-window.script.ts`).
   */
  lease(
    limit: LeaseLimit,
    key: string,
    args: { cost: number; want: number; share: number; giveBack: number; giveBackAt: number },
  ): Promise<LeaseReply> {
    return this.scripts
      .leaseFixedWindow(
        [key],
        [
          limit.points,
          limit.duration,
          args.cost,
          args.want,
          args.share,
          args.giveBack,
          args.giveBackAt,
          limit.blockDuration,
        ],
      )
      .then(undefined, scriptFailure);
  }

  /**
   * The fixed-window consume as rate-limiter-flexible answers it: resolves with a `RateLimiterRes` when
   * admitted, rejects with one when refused, or with the connection's error.
   */
  consumeFixed(limit: StoreLimit, key: string, cost: number): Promise<RateLimiterRes> {
    return this.fixed(limit).consume(this.subjectPart(limit, key), cost);
  }

  /** Refuse the client for `duration` ms. */
  async block(limit: StoreLimit, key: string, duration: number): Promise<void> {
    if (limit.algorithm === 'fixed-window') {
      // rate-limiter-flexible blocks in whole seconds; round up so the block is never shorter than asked.
      await this.fixed(limit).block(this.subjectPart(limit, key), Math.ceil(duration / 1_000));
      return;
    }
    await this.connection.set(`${key}:b`, '1', 'PX', duration);
  }

  /** Forget the client's count and block. Resolves to whether anything was stored. */
  async delete(limit: StoreLimit, key: string): Promise<boolean> {
    if (limit.algorithm === 'fixed-window') return this.fixed(limit).delete(this.subjectPart(limit, key));
    return (await this.connection.del(key, `${key}:b`)) > 0;
  }

  private fixedWindow(limit: StoreLimit, key: string, op: LimitOp, cost: number): Promise<RawLimitState> {
    const limiter = this.fixed(limit);
    const subject = this.subjectPart(limit, key);
    switch (op) {
      case 'consume':
        return limiter.consume(subject, cost).then(
          (res) => ({
            allowed: true,
            remaining: res.remainingPoints,
            retryAfter: 0,
            reset: res.msBeforeNext,
          }),
          (res: unknown) => {
            if (!(res instanceof RateLimiterRes)) throw res;
            return { allowed: false, remaining: 0, retryAfter: res.msBeforeNext, reset: res.msBeforeNext };
          },
        );
      case 'peek':
        return limiter.get(subject).then((res) => {
          if (!res) return { allowed: true, remaining: limit.points, retryAfter: 0, reset: 0 };
          const allowed = res.consumedPoints + 1 <= limit.points;
          return {
            allowed,
            remaining: res.remainingPoints,
            retryAfter: allowed ? 0 : res.msBeforeNext,
            reset: res.msBeforeNext,
          };
        });
      default:
        return (op === 'penalty' ? limiter.penalty(subject, cost) : limiter.reward(subject, cost)).then(
          (res) => ({
            allowed: res.consumedPoints <= limit.points,
            remaining: res.remainingPoints,
            retryAfter: 0,
            reset: res.msBeforeNext,
          }),
        );
    }
  }

  private fixed(limit: StoreLimit): RateLimiterRedis {
    limit.fixed ??= new RateLimiterRedis({
      storeClient: this.connection,
      keyPrefix: limit.keyBase,
      points: limit.points,
      duration: limit.duration / 1_000,
      blockDuration: limit.blockDuration / 1_000,
    });
    return limit.fixed;
  }

  /** rate-limiter-flexible joins `keyPrefix` and the key with ':'; give it the `{subject}` part. */
  private subjectPart(limit: StoreLimit, key: string): string {
    return key.slice(limit.keyBase.length + 1);
  }

  private nonce(): string {
    this.nonceCounter = (this.nonceCounter + 1) % Number.MAX_SAFE_INTEGER;
    return this.noncePrefix + this.nonceCounter.toString(36);
  }
}

function rawState(reply: LimiterReply): RawLimitState {
  return { allowed: reply[0] === 1, remaining: reply[1], retryAfter: reply[2], reset: reply[3] };
}

/** The one place a script's failure code becomes this lib's error; connection errors pass unchanged. */
function scriptFailure(err: unknown): never {
  if (err instanceof RedisScriptError) throw new RateLimitScriptError(err.script, err.code, { cause: err });
  throw err;
}
