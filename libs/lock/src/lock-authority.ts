import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import Redlock, { ExecutionError, Lock as RedlockLock } from 'redlock';
import { defineScripts, type ManagedRedisClient, type ScriptCallers } from '@redwing/redis';
import { FENCE_COUNTER_TTL } from './lock.constants';
import { acquireLockScript } from './scripts/acquire-lock.script';
import { extendLockScript } from './scripts/extend-lock.script';
import { handoffLockScript } from './scripts/handoff-lock.script';
import { ratchetFenceScript } from './scripts/ratchet-fence.script';
import { releaseLockScript } from './scripts/release-lock.script';

const SCRIPTS = {
  acquire: acquireLockScript,
  release: releaseLockScript,
  extend: extendLockScript,
  handoff: handoffLockScript,
  ratchet: ratchetFenceScript,
};

/** What redlock's votes said about one operation; filled in by the member adapters. */
export interface Ballot {
  /** Fence issued by each member that granted the lock. */
  grants: Map<number, number>;
  /** Remaining lease (ms) reported by members where another owner holds the lock. */
  busy: number[];
  /** Members that failed (unavailable, timeout: the outcome there is unknown). */
  failures: Map<number, unknown>;
  /** Members where the caller was not the owner (release/extend). */
  notOwner: number;
  /** 'acquire' while redlock acquires (its clean-up release then skips members that granted nothing). */
  phase: 'acquire' | 'release' | 'extend';
  /** Waiter id to register with (acquire), or ''. */
  waiter: string;
}

/** A vote against: the lock is held by another owner (a shared instance: thrown per busy vote, no stack). */
const BUSY_VOTE = Object.assign(new Error('lock held by another owner'), { stack: '' });
const NOT_OWNER_VOTE = Object.assign(new Error('not the owner of the lock'), { stack: '' });

/** The keys of one resource, all with the same `{hash tag}`. */
export interface ResourceKeys {
  lock: string;
  fence: string;
  waiting: string;
}

/** Outcome of one acquisition attempt. */
export type AttemptResult =
  | { kind: 'granted'; value: string; fence: number; lease: RedlockLock; last: number }
  | { kind: 'busy'; retryAfter: number }
  | { kind: 'unavailable'; cause: unknown };

/**
 * The lock authority: one Redis client, or a quorum of independent masters, driven by `redlock`. redlock
 * counts the votes (quorum, retries, drift, clean-up of partial grants); each voter is a small adapter that
 * runs Redwing's own scripts (fencing token, owner-only release, waiter registration) on a managed client,
 * so every call goes through that client's breaker and command timeout.
 */
export class LockAuthority {
  readonly redlock: Redlock;
  readonly size: number;
  readonly quorum: number;
  private readonly ballots = new Map<string, Ballot>();
  private readonly scripts: Array<ScriptCallers<typeof SCRIPTS>>;
  private readonly ownerPrefix = randomBytes(8).toString('hex');
  private counter = 0;
  private nextValue = '';

  constructor(
    readonly clients: ManagedRedisClient[],
    private readonly channel: string,
    driftFactor: number,
  ) {
    this.size = clients.length;
    this.quorum = Math.floor(clients.length / 2) + 1;
    this.scripts = clients.map((c) => defineScripts(c.command, SCRIPTS));
    const ops = new Map<string, 'acquire' | 'release' | 'extend'>();
    const markers = {
      acquireScript: 'redwing:acquire',
      extendScript: 'redwing:extend',
      releaseScript: 'redwing:release',
    };
    const voters = clients.map((_, i) => ({
      evalsha: (hash: string, numberOfKeys: number, args: string[]) =>
        this.vote(i, ops.get(hash)!, numberOfKeys, args),
      eval: () => Promise.reject(new Error('unreachable: Redwing scripts fall back to EVAL themselves')),
      quit: () => Promise.resolve('OK'),
    }));
    this.redlock = new Redlock(voters as unknown as Redis[], { driftFactor, retryCount: 0 }, markers);
    ops.set(this.redlock.scripts.acquireScript.hash, 'acquire');
    ops.set(this.redlock.scripts.extendScript.hash, 'extend');
    ops.set(this.redlock.scripts.releaseScript.hash, 'release');
    // redlock draws the owner value from its private _random(); ours is a per-process prefix and a counter,
    // handed in so the ballot of an attempt can be found by its value (redlock 5.0.0-beta.2, pinned).
    (this.redlock as unknown as { _random: () => string })._random = () => this.nextValue;
  }

  /** This process's id in the waiting sets (the random prefix of its owner values). */
  get waiterId(): string {
    return this.ownerPrefix;
  }

  /** A fresh owner value: unique across processes (random prefix) and cheap (a counter). */
  newOwner(): string {
    return `${this.ownerPrefix}:${(this.counter++).toString(36)}`;
  }

  /** The one client when the authority is a single Redis (handoff is only possible then). */
  get single(): ManagedRedisClient | undefined {
    return this.size === 1 ? this.clients[0] : undefined;
  }

  /** Whether every member's connection would send a command now (for diagnostics). */
  available(): boolean {
    return this.clients.filter((c) => c.isAvailable()).length >= this.quorum;
  }

  /** One attempt (no retries: waiting is the service's job). */
  async attempt(keys: ResourceKeys, ttl: number, waiter: string, reserve = 1): Promise<AttemptResult> {
    if (this.size === 1) return this.attemptSingle(keys, ttl, waiter, reserve);
    const value = this.newOwner();
    const ballot = this.open(value, 'acquire', waiter);
    this.nextValue = value;
    try {
      const lease = await this.redlock.acquire([keys.lock], ttl);
      let fence = 0;
      for (const f of ballot.grants.values()) if (f > fence) fence = f;
      if (this.size > 1) await this.ratchet(keys, fence, ballot, lease);
      return { kind: 'granted', value, fence, lease, last: fence };
    } catch (err) {
      if (!(err instanceof ExecutionError)) {
        if (err instanceof RatchetFailed) return { kind: 'unavailable', cause: err.cause };
        throw err;
      }
      if (ballot.failures.size > this.size - this.quorum || ballot.busy.length === 0) {
        return { kind: 'unavailable', cause: ballot.failures.values().next().value ?? err };
      }
      return { kind: 'busy', retryAfter: Math.max(1, ...ballot.busy) };
    } finally {
      this.ballots.delete(`acquire:${value}`);
    }
  }

  /**
   * Release through redlock (owner-only on every member).
   * @returns whether a quorum deleted our lock; `unavailable` when too many members failed to answer
   */
  async release(lease: RedlockLock): Promise<'released' | 'not-owner' | 'unavailable'> {
    if (this.size === 1) {
      const lockKey = lease.resources[0];
      lease.expiration = 0;
      const released = await this.scripts[0].release(
        [lockKey, `${lockKey}:waiting`],
        [lease.value, this.channel, lockKey],
      );
      return released === 1 ? 'released' : 'not-owner';
    }
    const ballot = this.open(lease.value, 'release', '');
    try {
      await this.redlock.release(lease);
      return 'released';
    } catch (err) {
      if (!(err instanceof ExecutionError)) throw err;
      return ballot.failures.size > this.size - this.quorum ? 'unavailable' : 'not-owner';
    } finally {
      this.ballots.delete(`release:${lease.value}`);
    }
  }

  /** Extend through redlock. */
  async extend(
    lease: RedlockLock,
    ttl: number,
  ): Promise<
    | { kind: 'extended'; lease: RedlockLock }
    | { kind: 'not-owner' | 'expired' }
    | { kind: 'unavailable'; cause: unknown }
  > {
    if (lease.expiration < Date.now()) return { kind: 'expired' };
    if (this.size === 1) {
      const start = Date.now();
      const extended = await this.scripts[0].extend([lease.resources[0]], [lease.value, ttl]);
      if (extended !== 1) return { kind: 'not-owner' };
      lease.expiration = 0;
      return { kind: 'extended', lease: this.lease(lease.resources[0], lease.value, start, ttl) };
    }
    const ballot = this.open(lease.value, 'extend', '');
    try {
      return { kind: 'extended', lease: await this.redlock.extend(lease, ttl) };
    } catch (err) {
      if (!(err instanceof ExecutionError)) throw err;
      if (ballot.failures.size > this.size - this.quorum) {
        return { kind: 'unavailable', cause: ballot.failures.values().next().value ?? err };
      }
      return { kind: ballot.notOwner > 0 ? 'not-owner' : 'expired' };
    } finally {
      this.ballots.delete(`extend:${lease.value}`);
    }
  }

  /**
   * Single authority only: pass a lock we own to the next local waiter in one round trip (see the handoff
   * script). Throws what the client throws when Redis is unavailable.
   */
  async handoff(
    keys: ResourceKeys,
    from: RedlockLock,
    ttl: number,
    options: { waiter: string; reserve: number },
  ): Promise<
    | { kind: 'handed'; value: string; fence: number; last: number; lease: RedlockLock }
    | { kind: 'released' | 'not-owner' }
  > {
    const value = this.newOwner();
    const start = Date.now();
    const [code, fence] = await this.scripts[0].handoff(
      [keys.lock, keys.fence, keys.waiting],
      [from.value, value, ttl, options.waiter, FENCE_COUNTER_TTL, this.channel, keys.lock, options.reserve],
    );
    from.expiration = 0;
    if (code === 0) return { kind: 'not-owner' };
    if (code === 2) return { kind: 'released' };
    return {
      kind: 'handed',
      value,
      fence,
      last: fence + options.reserve - 1,
      lease: this.lease(keys.lock, value, start, ttl),
    };
  }

  /**
   * A single authority: redlock's protocol with one voter is exactly one script call, so it is made
   * directly, without redlock's vote bookkeeping (about a fifth of the CPU of a grant); the lease gets
   * redlock's validity rule (start + ttl − drift). Redis failures surface as `unavailable`.
   */
  private async attemptSingle(
    keys: ResourceKeys,
    ttl: number,
    waiter: string,
    reserve: number,
  ): Promise<AttemptResult> {
    const value = this.newOwner();
    const start = Date.now();
    let reply: [1, number] | [0, number];
    try {
      reply = await this.scripts[0].acquire(
        [keys.lock, keys.fence, keys.waiting],
        [value, ttl, waiter, FENCE_COUNTER_TTL, reserve],
      );
    } catch (err) {
      // The outcome of a timed-out call is unknown: remove what it may have set (owner-only, best effort).
      void this.scripts[0]
        .release([keys.lock, keys.waiting], [value, this.channel, keys.lock])
        .catch(() => undefined);
      return { kind: 'unavailable', cause: err };
    }
    if (reply[0] === 0) return { kind: 'busy', retryAfter: Math.max(1, reply[1]) };
    const fence = reply[1];
    return {
      kind: 'granted',
      value,
      fence,
      last: fence + reserve - 1,
      lease: this.lease(keys.lock, value, start, ttl),
    };
  }

  /** A redlock lease object (what `release`/`extend` take), valid until start + ttl − drift. */
  private lease(lockKey: string, value: string, start: number, ttl: number): RedlockLock {
    const drift = Math.round(this.redlock.settings.driftFactor * ttl) + 2;
    return new RedlockLock(this.redlock, [lockKey], value, [], start + ttl - drift);
  }

  private open(value: string, phase: Ballot['phase'], waiter: string): Ballot {
    const ballot: Ballot = { grants: new Map(), busy: [], failures: new Map(), notOwner: 0, phase, waiter };
    // Keyed by operation too: an extension may still be in flight when the release of the same lock starts.
    this.ballots.set(`${phase}:${value}`, ballot);
    return ballot;
  }

  /** Multi-master: raise every granting member's counter to the issued token before the lease is used. */
  private async ratchet(
    keys: ResourceKeys,
    fence: number,
    ballot: Ballot,
    lease: RedlockLock,
  ): Promise<void> {
    const members = [...ballot.grants.keys()];
    const results = await Promise.allSettled(
      members.map((i) => this.scripts[i].ratchet([keys.fence], [fence, FENCE_COUNTER_TTL])),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed || lease.expiration <= Date.now()) {
      await this.release(lease).catch(() => undefined);
      throw new RatchetFailed(failed?.reason ?? new Error('the lease expired while its fence was recorded'));
    }
  }

  /** One member's vote, called by redlock as `evalsha(hash, numberOfKeys, [...keys, ...args])`. */
  private async vote(
    member: number,
    op: 'acquire' | 'release' | 'extend',
    n: number,
    args: string[],
  ): Promise<number> {
    const lockKey = args[0];
    const value = args[n];
    // redlock's clean-up release after a failed acquisition runs under the acquisition's ballot.
    const ballot = this.ballots.get(`${op}:${value}`) ?? this.ballots.get(`acquire:${value}`);
    const scripts = this.scripts[member];
    try {
      if (op === 'acquire') {
        const [granted, detail] = await scripts.acquire(
          [lockKey, `${lockKey}:fence`, `${lockKey}:waiting`],
          [value, args[n + 1], ballot?.waiter ?? '', FENCE_COUNTER_TTL, 1],
        );
        if (granted === 1) {
          ballot?.grants.set(member, detail);
          return n;
        }
        ballot?.busy.push(detail);
        throw BUSY_VOTE;
      }
      if (op === 'release') {
        // redlock's clean-up after a failed acquisition: nothing to undo where nothing was granted and the
        // outcome is known, so skip the round trip.
        if (ballot?.phase === 'acquire' && !ballot.grants.has(member) && !ballot.failures.has(member))
          return n;
        const released = await scripts.release(
          [lockKey, `${lockKey}:waiting`],
          [value, this.channel, lockKey],
        );
        if (released === 1) return n;
      } else {
        const extended = await scripts.extend([lockKey], [value, args[n + 1]]);
        if (extended === 1) return n;
      }
      if (ballot) ballot.notOwner++;
      throw NOT_OWNER_VOTE;
    } catch (err) {
      if (err !== BUSY_VOTE && err !== NOT_OWNER_VOTE) ballot?.failures.set(member, err);
      throw err;
    }
  }
}

class RatchetFailed extends Error {
  constructor(override readonly cause: unknown) {
    super('fence ratchet failed');
  }
}
