import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import {
  ChannelSubscription,
  defineScripts,
  describeRedisError,
  isRedisUnavailable,
  REDWING_METRICS,
  RedisClientManager,
  runInSpan,
  type ManagedRedisClient,
  type MetricsRegistry,
  type ScriptCallers,
} from '@redwing/redis';
import { HeldLock } from './held-lock';
import { LeaderElection } from './leader-election';
import { LockAuthority, type ResourceKeys } from './lock-authority';
import { LockMetrics } from './lock-metrics';
import { LockWaiting } from './lock-waiting';
import { callOptions, checkResource, resolveLockConfig, type ResolvedLockConfig } from './lock.config';
import { LOCK_KEY_SEGMENT } from './lock.constants';
import { LockConfigError, LockLostError, LockUnavailableError } from './lock.errors';
import type {
  AcquireOptions,
  FencedValue,
  FencedWriteResult,
  LeaderElectionOptions,
  LeaderRole,
  Lock,
  LockModuleOptions,
  UsingOptions,
} from './lock.interfaces';
import { LOCK_MODULE_OPTIONS } from './lock.module-definition';
import { writeFencedScript } from './scripts/write-fenced.script';

/** What `using()` and `@WithLock()` expose to the code they run (see `LockService.current()`). */
export interface LockScope {
  lock: Lock;
  signal: AbortSignal;
}

/**
 * Distributed locks on Redis through `redlock`: one Redis, or a quorum of independent masters. Every grant
 * carries a fencing token; waiting is woken by releases (no polling storm); Redis failures fail closed with
 * {@link LockUnavailableError}, never a local lock.
 * @example
 * const lock = await locks.acquire(`order:${id}`, { ttl: 10_000, wait: 2_000 });
 * try { await orders.update(id, change, { fence: lock.fence }); } finally { await locks.release(lock); }
 */
@Injectable()
export class LockService implements OnModuleInit, OnApplicationShutdown {
  /** Resolved options (defaults, `LOCK_*` environment, explicit). */
  readonly config: ResolvedLockConfig;
  private readonly logger = new Logger('LockService');
  private readonly authority: LockAuthority;
  private readonly waiting: LockWaiting;
  private readonly metrics: LockMetrics;
  private readonly keyPrefix: string;
  private readonly channel: string;
  private readonly scope = new AsyncLocalStorage<LockScope>();
  private readonly elections = new Map<string, LeaderElection>();
  private readonly fenced: ScriptCallers<{ write: typeof writeFencedScript }>;
  /** The release channel on each authority's subscriber connection (wakes waiters; they poll without it). */
  private subscriptions?: ChannelSubscription[];

  constructor(
    @Inject(LOCK_MODULE_OPTIONS) options: LockModuleOptions,
    private readonly manager: RedisClientManager,
    @Optional() @Inject(REDWING_METRICS) registry?: MetricsRegistry,
  ) {
    this.config = resolveLockConfig(options ?? {});
    const clients = this.config.clients.map((name, i) => clientOf(manager, name, i));
    this.keyPrefix = manager.key(LOCK_KEY_SEGMENT, '');
    this.channel = `${this.keyPrefix}released`;
    this.authority = new LockAuthority(clients, this.channel, this.config.driftFactor);
    this.metrics = new LockMetrics(
      registry,
      () => this.leaderStates(),
      () => (this.subscriptions ?? []).filter((sub) => sub.refused() !== undefined).length,
    );
    this.waiting = new LockWaiting(this.authority, this.metrics, this.config.retryInterval, () =>
      this.subscribe(),
    );
    this.fenced = defineScripts(clients[0].command, { write: writeFencedScript });
  }

  onModuleInit(): void {
    // Subscribe up front, so the first waiter does not miss the release it waits for.
    this.subscribe();
  }

  /**
   * Acquire `resource`, waiting up to `wait` ms while another owner holds it.
   * @throws LockBusyError when it stayed held for the whole wait (`retryAfter` = the holder's remaining lease)
   * @throws LockUnavailableError when Redis (or a quorum of masters) cannot decide; nothing is granted
   * @throws LockConfigError for an invalid resource name or option
   */
  acquire(resource: string, options?: AcquireOptions): Promise<Lock> {
    checkResource(resource);
    const { ttl, wait } = callOptions(options, this.config);
    return runInSpan('lock.wait', { 'lock.wait_budget_ms': wait, 'lock.ttl_ms': ttl }, () =>
      this.waiting.obtain(resource, this.keys(resource), ttl, wait),
    );
  }

  /**
   * One attempt, no waiting.
   * @returns the lock, or `null` when another owner holds it
   * @throws LockUnavailableError when Redis cannot decide
   */
  async tryAcquire(resource: string, options?: Omit<AcquireOptions, 'wait'>): Promise<Lock | null> {
    try {
      return await this.acquire(resource, { ...options, wait: 0 });
    } catch (err) {
      if (err instanceof Error && err.name === 'LockBusyError') return null;
      throw err;
    }
  }

  /**
   * Release a lock if it is still ours (owner-only: a lock that expired and was taken by another owner is
   * never deleted). A local waiter of the same resource gets it in the same round trip.
   * @returns true when our lease was released, false when it was no longer ours (or already released)
   * @throws LockUnavailableError when Redis cannot be reached (the lease then expires by itself)
   */
  async release(lock: Lock): Promise<boolean> {
    const held = heldOf(lock);
    if (held.state !== 'held') return false;
    held.state = 'released';
    this.metrics.held((performance.now() - held.grantedAt) / 1_000);
    if (this.authority.single) {
      // A local waiter gets the lock with a reserved token and no round trip, else in one round trip.
      if (this.waiting.localHandoff(held)) return true;
      const nextTtl = this.waiting.nextWaiterTtl(held);
      if (nextTtl !== undefined) return this.handoff(held, nextTtl);
    }
    try {
      const outcome = await this.authority.release(held.lease);
      if (outcome === 'unavailable') throw new LockUnavailableError(held.resource, 'release');
      return outcome === 'released';
    } catch (err) {
      throw this.unavailable(err, held.resource, 'release');
    } finally {
      this.waiting.letGo(held);
    }
  }

  /**
   * Renew the lease for `ttl` ms from now (default: the lock's own ttl).
   * @throws LockLostError when the lease expired or another owner holds the resource now
   * @throws LockUnavailableError when Redis cannot confirm the extension (treat the lease as at risk)
   */
  async extend(lock: Lock, ttl?: number): Promise<Lock> {
    const held = heldOf(lock);
    const lease = ttl === undefined ? held.ttl : callOptions({ ttl }, this.config).ttl;
    if (held.state !== 'held')
      throw new LockLostError(held.resource, held.fence, held.state === 'lost' ? 'expired' : 'released');
    let result: Awaited<ReturnType<LockAuthority['extend']>>;
    try {
      result = await this.authority.extend(held.lease, lease);
    } catch (err) {
      throw this.unavailable(err, held.resource, 'extend');
    }
    if (result.kind === 'extended') {
      held.lease = result.lease;
      held.ttl = lease;
      return held;
    }
    if (result.kind === 'unavailable')
      throw new LockUnavailableError(held.resource, 'extend', { cause: result.cause });
    this.markLost(held, result.kind === 'not-owner' ? 'taken' : 'expired');
    throw new LockLostError(held.resource, held.fence, result.kind === 'not-owner' ? 'taken' : 'expired');
  }

  /**
   * Run `fn` holding `resource`: the lease is extended every `extendEvery` ms (default ttl/3) and released
   * when `fn` settles. `signal` aborts (reason: {@link LockLostError}) as soon as an extension fails or the
   * lease comes within ttl/3 of expiring unconfirmed; stop writing then. If the lease was lost before `fn`
   * settled, `using()` rejects with that LockLostError even when `fn` resolved.
   * @throws LockBusyError, LockUnavailableError as `acquire()`; LockLostError as above
   */
  async using<T>(
    resource: string,
    fn: (signal: AbortSignal, lock: Lock) => Promise<T>,
    options?: UsingOptions,
  ): Promise<T> {
    const { ttl, wait, extendEvery } = callOptions(options, this.config);
    const lock = heldOf(await this.acquire(resource, { ttl, wait }));
    const controller = new AbortController();
    const keeper = this.keepAlive(lock, controller, extendEvery);
    try {
      const value = await this.scope.run({ lock, signal: controller.signal }, () =>
        fn(controller.signal, lock),
      );
      if (controller.signal.aborted) throw controller.signal.reason as Error;
      return value;
    } finally {
      keeper.stop();
      if (lock.state === 'held')
        await this.release(lock).catch((err: unknown) => this.debug('release after using()', err));
    }
  }

  /** The lock and signal of the `using()` / `@WithLock()` call the current code runs in, if any. */
  current(): LockScope | undefined {
    return this.scope.getStore();
  }

  /**
   * The check at a Redis-stored protected resource: store `value` under `name` only if `fence` is at least
   * the highest token `name` has accepted (a Lua compare-and-set on the first lock client). Use it, or the
   * same rule in your own store (`UPDATE … SET …, fence = $token WHERE id = $id AND fence <= $token`).
   * @returns whether it was accepted, and the highest token the resource has seen
   * @throws LockUnavailableError when Redis cannot be reached
   */
  async writeFenced(name: string, fence: number | Lock, value: string): Promise<FencedWriteResult> {
    checkResource(name);
    const token = typeof fence === 'number' ? fence : fence.fence;
    if (!Number.isSafeInteger(token) || token < 1)
      throw new LockConfigError('fence', 'must be a fencing token (a positive integer)');
    try {
      const [accepted, highest] = await this.fenced.write([this.fencedKey(name)], [token, value]);
      return { accepted: accepted === 1, fence: highest };
    } catch (err) {
      throw this.unavailable(err, name, 'fence');
    }
  }

  /** The value `writeFenced` stored under `name`, with the token that wrote it; `null` if none. */
  async readFenced(name: string): Promise<FencedValue | null> {
    checkResource(name);
    try {
      const [fence, value] = await this.authority.clients[0].command.hmget(this.fencedKey(name), 'f', 'v');
      return fence === null || value === null ? null : { fence: Number(fence), value };
    } catch (err) {
      throw this.unavailable(err, name, 'fence');
    }
  }

  /**
   * A leader election over `name` (one per name per process): call `start()` on it. At most one instance
   * leads at a time (fence leader-only writes with `lease.fence`); a leader that dies or stalls is replaced
   * within about its ttl.
   * @throws LockConfigError when an election of that name exists in this process
   */
  createElection(name: string, options: LeaderElectionOptions = {}): LeaderElection {
    checkResource(name);
    if (this.elections.has(name))
      throw new LockConfigError(`election "${name}"`, 'already exists in this process');
    const election = new LeaderElection(this, name, options, {
      changed: (change) => this.metrics.leaderChange(change),
      dropped: () => this.elections.delete(name),
    });
    this.elections.set(name, election);
    return election;
  }

  /** This instance's role in each election it created (for readiness endpoints). */
  roles(): Record<string, LeaderRole> {
    const out: Record<string, LeaderRole> = {};
    for (const [name, e] of this.elections) out[name] = e.role;
    return out;
  }

  /** Stop elections (releasing leadership), reject waiters, unsubscribe. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.elections.values()].map((e) => e.stop()));
    this.waiting.close();
    await Promise.all((this.subscriptions ?? []).map((sub) => sub.stop()));
    this.subscriptions = [];
  }

  /** @internal the resource's keys, all with the same `{hash tag}`. */
  keys(resource: string): ResourceKeys {
    const lock = `${this.keyPrefix}{${resource}}`;
    return { lock, fence: `${lock}:fence`, waiting: `${lock}:waiting` };
  }

  /** @internal a lock was lost while held: counted, and the next local waiter may try. */
  markLost(held: HeldLock, reason: 'expired' | 'taken' | 'extend-failed'): void {
    if (held.state !== 'held') return;
    held.state = 'lost';
    this.metrics.leaseLost(reason);
    this.metrics.held((performance.now() - held.grantedAt) / 1_000);
    this.waiting.letGo(held);
  }

  private async handoff(held: HeldLock, ttl: number): Promise<boolean> {
    try {
      const result = await this.authority.handoff(held.keys, held.lease, ttl, {
        waiter: this.authority.waiterId,
        reserve: this.waiting.reserveFor(held),
      });
      if (result.kind === 'handed') {
        this.waiting.handedOver(held, result, ttl);
        return true;
      }
      this.waiting.letGo(held);
      return result.kind === 'released';
    } catch (err) {
      this.waiting.letGo(held);
      throw this.unavailable(err, held.resource, 'release');
    }
  }

  /** Extends `lock` every `every` ms; aborts `controller` when that fails or the lease nears expiry unconfirmed. */
  private keepAlive(lock: HeldLock, controller: AbortController, every: number): { stop(): void } {
    let timer: NodeJS.Timeout | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let overdue: NodeJS.Timeout | undefined;
    let stopped = false;
    const lose = (reason: 'expired' | 'taken' | 'extend-failed', cause?: unknown) => {
      if (stopped || controller.signal.aborted) return;
      // A LockLostError from extend() was counted there; an unconfirmed lease is counted here and stays
      // 'held', so the release in using() still removes it if it turns out to be ours.
      if (!(cause instanceof LockLostError)) this.metrics.leaseLost(reason);
      controller.abort(new LockLostError(lock.resource, lock.fence, reason, { cause }));
      stop();
    };
    const arm = () => {
      clearTimeout(watchdog);
      // Abort while a third of the lease is left, whatever the extension is doing (e.g. stuck on a timeout).
      const margin = Math.floor(lock.ttl / 3);
      watchdog = setTimeout(() => lose('expired'), Math.max(0, lock.validUntil - Date.now() - margin));
      timer = setTimeout(tick, every);
    };
    const tick = () => {
      if (stopped) return;
      // An extension that has not answered within ttl/4 counts as failed: the signal aborts then, within
      // ttl/3 of the attempt even on a black-holed connection, well before the lease can expire.
      overdue = setTimeout(() => lose('extend-failed'), Math.floor(lock.ttl / 4));
      this.extend(lock).then(
        () => {
          clearTimeout(overdue);
          if (!stopped) arm();
        },
        (err: unknown) => {
          clearTimeout(overdue);
          if (stopped) return;
          if (err instanceof LockLostError) lose(err.reason === 'taken' ? 'taken' : 'expired', err);
          else lose('extend-failed', err);
        },
      );
    };
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(watchdog);
      clearTimeout(overdue);
    };
    arm();
    return { stop };
  }

  private subscribe(): void {
    if (this.subscriptions) return;
    this.subscriptions = this.authority.clients.map((client) => {
      const sub = new ChannelSubscription(client.subscriber(), this.channel, {
        onMessage: (message) => this.waiting.wake(message),
        onRefused: (why) =>
          this.logger.warn(
            `release channel not subscribed on Redis client "${client.name}": ${why} (waiters there poll every ` +
              `${this.config.retryInterval} ms instead of waking on a release until Redis accepts it; sent again ` +
              'with a backoff)',
          ),
        onAccepted: () => this.logger.log(`release channel subscribed now on Redis client "${client.name}"`),
      });
      void sub.start();
      return sub;
    });
  }

  private leaderStates(): Map<string, boolean> {
    const out = new Map<string, boolean>();
    for (const [name, e] of this.elections) out.set(name, e.isLeader);
    return out;
  }

  private fencedKey(name: string): string {
    return `${this.keyPrefix}fenced:{${name}}`;
  }

  /** Map an outage to LockUnavailableError; anything else (a bug, a refused command) passes through. */
  private unavailable(err: unknown, resource: string, operation: LockUnavailableError['operation']): Error {
    if (err instanceof LockUnavailableError || err instanceof LockLostError) return err;
    if (isRedisUnavailable(err)) return new LockUnavailableError(resource, operation, { cause: err });
    return err instanceof Error ? err : new Error(String(err));
  }

  private debug(what: string, err: unknown): void {
    this.logger.debug(`${what}: ${describeRedisError(err)}`);
  }
}

function clientOf(manager: RedisClientManager, name: string, i: number): ManagedRedisClient {
  if (!manager.has(name)) {
    throw new LockConfigError(
      `clients[${i}]`,
      `names Redis client "${name}", which RedisClientModule does not configure; add it under ` +
        `RedisClientModule.forRoot({ clients: { ${name}: { url } } }) or fix the name`,
    );
  }
  return manager.get(name);
}

function heldOf(lock: Lock): HeldLock {
  if (!(lock instanceof HeldLock)) {
    throw new LockConfigError(
      'lock',
      'must be a lock returned by this LockService (acquire, tryAcquire, using)',
    );
  }
  return lock;
}
