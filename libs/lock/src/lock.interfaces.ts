/** Options of `LockModule.forRoot()`. Every duration is in milliseconds. */
export interface LockModuleOptions {
  /**
   * Names of `RedisClientModule` clients that vote on every lock. One client (standalone, Sentinel or
   * Cluster) is a single lock authority; three or five clients pointing at **independent** masters form a
   * redlock quorum (⌊n/2⌋ + 1 must agree). Env `LOCK_CLIENTS` (comma list).
   * @default ['default']
   */
  clients?: string[];
  /** Lease length; holders extend it (`extend()`, `using()`). Env `LOCK_TTL`. @default 30_000 ms */
  ttl?: number;
  /** How long `acquire()` waits for a busy lock before `LockBusyError`. Env `LOCK_WAIT`. @default 10_000 ms */
  wait?: number;
  /**
   * Longest pause between two attempts of a waiter that heard no release message (the fallback when a
   * pub/sub wake-up is missed); each pause is jittered and never longer than the holder's remaining lease.
   * Env `LOCK_RETRY_INTERVAL`. @default 250 ms
   */
  retryInterval?: number;
  /** Share of the TTL subtracted from a lease's validity for clock drift (redlock's `driftFactor`). @default 0.01 */
  driftFactor?: number;
  /** Read `LOCK_*` environment variables for options left unset. @default true */
  useEnv?: boolean;
}

/** Options of one acquisition. */
export interface AcquireOptions {
  /** Lease length. @default the module's `ttl` (30_000 ms) */
  ttl?: number;
  /** How long to wait while another owner holds the lock; 0 = one attempt. @default the module's `wait` */
  wait?: number;
}

/** Options of `using()`: an acquisition whose lease is extended automatically while `fn` runs. */
export interface UsingOptions extends AcquireOptions {
  /**
   * Extend the lease every this many ms. @default ttl / 3 (a failed extension aborts the signal at once,
   * so the holder hears about it at least 2/3 of a TTL before another owner can take the lock)
   */
  extendEvery?: number;
}

/** A held lock. Pass it to `release()`/`extend()`, and its `fence` to the protected resource. */
export interface Lock {
  /** The resource name as given to `acquire()`. */
  readonly resource: string;
  /**
   * Fencing token: strictly increasing per resource across every acquisition by every process. Send it with
   * every write the lock protects; the resource refuses a token lower than the highest it has seen.
   */
  readonly fence: number;
  /** Local time (ms since epoch) until which the lease is valid, drift already subtracted. */
  readonly validUntil: number;
  /** The lease length of the last acquisition or extension, ms. */
  readonly ttl: number;
}

/** Result of a fenced write at a Redis-stored resource (see `LockService.writeFenced`). */
export interface FencedWriteResult {
  /** Whether the write was applied: the token was at least the highest the resource had seen. */
  accepted: boolean;
  /** The highest token the resource has seen after this call. */
  fence: number;
}

/** A value stored by `writeFenced`, with the token that wrote it. */
export interface FencedValue {
  value: string;
  fence: number;
}

/** Payload of `@WithLock()`. */
export interface WithLockOptions extends UsingOptions {
  /**
   * Resource name template: `{0}` is the first argument, `{1.id}` a property of the second. Validated at
   * start-up against the method's parameters.
   */
  resource: string;
}

/** Callbacks and lease of a leader election (`LockService.createElection`). */
export interface LeaderElectionOptions {
  /** Lease of the leadership; a dead or paused leader is replaced within about ttl + one retry. @default 5_000 ms */
  ttl?: number;
  /** Called when this instance becomes leader; `signal` aborts when leadership is lost. */
  elected?: (lease: LeaderLease) => void | Promise<void>;
  /** Called when this instance stops being leader (lost lease, Redis failure, or `stop()`). */
  revoked?: (reason: LeaderRevokeReason) => void | Promise<void>;
}

/** What an elected leader gets. */
export interface LeaderLease {
  /** Fencing token of this term: fence writes of leader-only work with it. */
  fence: number;
  /** Aborted when this term ends. */
  signal: AbortSignal;
}

/** Why a term ended. */
export type LeaderRevokeReason = 'lost' | 'unavailable' | 'stopped';

/** This instance's role in an election. */
export type LeaderRole = 'leader' | 'follower' | 'stopped';
