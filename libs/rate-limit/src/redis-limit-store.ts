import { randomBytes } from 'node:crypto';
import type { RedisConnection } from '@redwing/redis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { LimitOp, RawLimitState } from './local-limiter';
import type { RateLimitAlgorithm } from './rate-limit.interfaces';
import { consumeSlidingWindowScript } from './scripts/consume-sliding-window.script';
import { consumeTokenBucketScript } from './scripts/consume-token-bucket.script';

/** The Lua scripts of this lib, registered with `defineCommand` on the shared connection. */
export const RATE_LIMIT_SCRIPTS = [consumeSlidingWindowScript, consumeTokenBucketScript] as const;

type ScriptCommand = (...args: Array<string | number>) => Promise<number[]>;
type WithScripts = Record<(typeof RATE_LIMIT_SCRIPTS)[number]['name'], ScriptCommand>;

/** A script answered with a negative code: the caller passed a bad argument. Never an outage. */
export class RateLimitScriptError extends Error {
  override readonly name = 'RateLimitScriptError';

  constructor(
    readonly script: string,
    readonly code: number,
    readonly argument: number,
  ) {
    super(
      `Rate limit script ${script} refused ARGV[${argument}] (code ${code}); this is a bug in ` +
        `@redwing/rate-limit or in a direct call of the script, not a Redis problem.`,
    );
  }
}

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
export class RedisLimitStore {
  private readonly scripts: WithScripts;
  private readonly noncePrefix = randomBytes(6).toString('base64url');
  private nonceCounter = 0;

  /**
   * Defines every script on the connection now, before it connects: with ioredis auto-pipelining, a command
   * defined while an auto-pipeline is pending is missing from that pipeline and ioredis throws from its exec
   * callback (an uncaught TypeError). rate-limiter-flexible defines its `rlflxIncr` in its constructor, so one
   * throw-away instance is built here too; later instances redefine the same script, which is harmless.
   */
  constructor(private readonly connection: RedisConnection) {
    for (const script of RATE_LIMIT_SCRIPTS) {
      connection.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    }
    new RateLimiterRedis({ storeClient: connection, points: 1, duration: 1 });
    this.scripts = connection as unknown as WithScripts;
  }

  /** Apply `op` with `cost` points to the client key `key` (`<keyBase>:{<subject>}`). */
  apply(limit: StoreLimit, key: string, op: LimitOp, cost: number): Promise<RawLimitState> {
    if (limit.algorithm === 'fixed-window') return this.fixedWindow(limit, key, op, cost);
    const script =
      limit.algorithm === 'sliding-window'
        ? this.scripts.redwingRateLimitSlidingWindow(
            key,
            `${key}:b`,
            op,
            limit.points,
            limit.duration,
            cost,
            limit.blockDuration,
            this.nonce(),
            '',
          )
        : this.scripts.redwingRateLimitTokenBucket(
            key,
            `${key}:b`,
            op,
            limit.points,
            limit.duration,
            cost,
            limit.blockDuration,
            '',
          );
    const name = limit.algorithm === 'sliding-window' ? 'consume-sliding-window' : 'consume-token-bucket';
    return script.then((reply) => {
      if (reply[0] < 0) throw new RateLimitScriptError(name, reply[0], reply[1]);
      return { allowed: reply[0] === 1, remaining: reply[1], retryAfter: reply[2], reset: reply[3] };
    });
  }

  /**
   * The fixed-window consume as rate-limiter-flexible answers it: resolves with a `RateLimiterRes` when
   * admitted, rejects with one when refused, or with the connection's error.
   */
  consumeFixed(limit: StoreLimit, key: string, cost: number): Promise<RateLimiterRes> {
    return this.fixed(limit, key).consume(this.subjectPart(limit, key), cost);
  }

  /** Refuse the client for `duration` ms. */
  async block(limit: StoreLimit, key: string, duration: number): Promise<void> {
    if (limit.algorithm === 'fixed-window') {
      // rate-limiter-flexible blocks in whole seconds; round up so the block is never shorter than asked.
      await this.fixed(limit, key).block(this.subjectPart(limit, key), Math.ceil(duration / 1_000));
      return;
    }
    await this.connection.set(`${key}:b`, '1', 'PX', duration);
  }

  /** Forget the client's count and block. Resolves to whether anything was stored. */
  async delete(limit: StoreLimit, key: string): Promise<boolean> {
    if (limit.algorithm === 'fixed-window')
      return this.fixed(limit, key).delete(this.subjectPart(limit, key));
    return (await this.connection.del(key, `${key}:b`)) > 0;
  }

  private fixedWindow(limit: StoreLimit, key: string, op: LimitOp, cost: number): Promise<RawLimitState> {
    const limiter = this.fixed(limit, key);
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

  private fixed(limit: StoreLimit, _key: string): RateLimiterRedis {
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
