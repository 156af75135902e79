import { performance } from 'node:perf_hooks';
import type { Lock as RedlockLock } from 'redlock';
import { HeldLock } from './held-lock';
import type { AttemptResult, LockAuthority, ResourceKeys } from './lock-authority';
import type { LockMetrics } from './lock-metrics';
import { LOCAL_HANDOFF_BLOCK } from './lock.constants';
import { LockBusyError, LockUnavailableError } from './lock.errors';

/** One caller waiting for a resource. */
interface Waiter {
  ttl: number;
  started: number;
  resolve: (lock: HeldLock) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/** What this process knows about one resource: its local holders and its queue of local waiters. */
interface ResourceState {
  resource: string;
  keys: ResourceKeys;
  /** Locks of this resource held in this process (0 or 1 unless a lease was lost and re-taken). */
  holders: number;
  waiters: Waiter[];
  /** An attempt is in flight (only the head of the queue talks to Redis). */
  attempting: boolean;
  /** The lease the attempt in flight asks for, ms: how long a caller here may hold it if it is granted. */
  attemptTtl: number;
  /** A release message arrived while an attempt was in flight: try again at once. */
  wake: boolean;
  /** Remaining lease of the other owner when last seen, ms. */
  hint: number;
  /** The latest lock of this resource granted in this process (the holder when `holders > 0`). */
  local?: HeldLock;
  retry?: NodeJS.Timeout;
}

/**
 * Grants and waiting without polling storms. Per resource, this process keeps one FIFO queue: only its
 * head sends attempts to Redis, woken by (1) a local release (handed over in one round trip on a single
 * authority), (2) the holder's release message (pub/sub, published only when someone registered as
 * waiting), or (3) a jittered retry no later than the holder's lease end and at most `retryInterval` apart,
 * in case a message is missed. A waiter gives up only when its own wait budget is spent.
 */
export class LockWaiting {
  private readonly states = new Map<string, ResourceState>();
  private closed = false;

  constructor(
    private readonly authority: LockAuthority,
    private readonly metrics: LockMetrics,
    private readonly retryInterval: number,
    private readonly onFirstWait: () => void,
  ) {}

  /** Resolves with a lock, or rejects with LockBusyError / LockUnavailableError. */
  obtain(resource: string, keys: ResourceKeys, ttl: number, wait: number): Promise<HeldLock> {
    const started = performance.now();
    if (this.closed) return Promise.reject(new LockUnavailableError(resource, 'acquire'));
    const state = this.states.get(keys.lock);
    if (state) return this.enqueue(state, ttl, wait, started, false);
    const fresh: ResourceState = {
      resource,
      keys,
      holders: 0,
      waiters: [],
      attempting: true,
      attemptTtl: ttl,
      wake: false,
      hint: 0,
    };
    this.states.set(keys.lock, fresh);
    return this.firstAttempt(fresh, ttl, wait, started);
  }

  /** A release message for `lockKey` arrived. */
  wake(lockKey: string): void {
    const state = this.states.get(lockKey);
    if (!state || state.waiters.length === 0) return;
    if (state.attempting) state.wake = true;
    else this.pump(state);
  }

  /** A local holder let go (released, handed over elsewhere, or lost): the next local waiter may try. */
  letGo(lock: HeldLock): void {
    const state = this.states.get(lock.keys.lock);
    if (!state) return;
    state.holders = Math.max(0, state.holders - 1);
    this.pump(state);
    this.dropIfIdle(state);
  }

  /** The next local waiter of `lock`'s resource, if any: the release can hand the lock over. */
  nextWaiterTtl(lock: HeldLock): number | undefined {
    return this.states.get(lock.keys.lock)?.waiters[0]?.ttl;
  }

  /** Tokens to reserve with the next grant of `lock`'s resource: one per local waiter, at most a block. */
  reserveFor(lock: HeldLock): number {
    return Math.max(1, Math.min(LOCAL_HANDOFF_BLOCK, this.states.get(lock.keys.lock)?.waiters.length ?? 1));
  }

  /**
   * Single authority: pass `lock`'s lease to the next local waiter without a round trip, when the lease has
   * a reserved token left and at least 90 % of the waiter's ttl to run (Redis still holds it under this
   * process's owner value; only this process's queue is involved).
   * @returns whether it was handed over
   */
  localHandoff(lock: HeldLock): boolean {
    const state = this.states.get(lock.keys.lock);
    const head = state?.waiters[0];
    if (!state || !head || lock.block.next > lock.block.last) return false;
    if (lock.lease.expiration - Date.now() < head.ttl * 0.9) return false;
    state.waiters.shift();
    clearTimeout(head.timer);
    const now = performance.now();
    this.metrics.acquisition('acquired', (now - head.started) / 1_000);
    const fence = lock.block.next++;
    state.local = new HeldLock(state.resource, fence, lock.lease, head.ttl, state.keys, now, lock.block);
    head.resolve(state.local);
    return true;
  }

  /** Give a lock handed over by `release()` to the head waiter (or release it when nobody waits any more). */
  handedOver(
    lock: HeldLock,
    handed: { value: string; fence: number; last: number; lease: RedlockLock },
    ttl: number,
  ): void {
    const state = this.states.get(lock.keys.lock)!;
    const waiter = state.waiters.shift();
    if (!waiter) {
      state.holders--;
      void this.authority.release(handed.lease).catch(() => undefined);
      this.dropIfIdle(state);
      return;
    }
    // The releasing holder's place passes to the waiter: `holders` stays as it is.
    state.holders--;
    this.grant(state, waiter, { kind: 'granted', ...handed }, ttl);
  }

  /** Reject every waiter and stop every timer (shutdown). */
  close(): void {
    this.closed = true;
    for (const state of this.states.values()) {
      clearTimeout(state.retry);
      for (const w of state.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new LockUnavailableError(state.resource, 'acquire'));
      }
    }
    this.states.clear();
  }

  private async firstAttempt(
    state: ResourceState,
    ttl: number,
    wait: number,
    started: number,
  ): Promise<HeldLock> {
    let result: AttemptResult;
    try {
      result = await this.authority.attempt(state.keys, ttl, wait > 0 ? this.authority.waiterId : '', 1);
    } finally {
      state.attempting = false;
    }
    if (result.kind === 'granted') {
      state.holders++;
      return this.newLock(state, result, ttl, started);
    }
    if (result.kind === 'unavailable') {
      this.metrics.acquisition('unavailable', (performance.now() - started) / 1_000);
      this.pump(state);
      this.dropIfIdle(state);
      throw new LockUnavailableError(state.resource, 'acquire', { cause: result.cause });
    }
    state.hint = result.retryAfter;
    if (wait === 0) {
      this.metrics.acquisition('busy', (performance.now() - started) / 1_000);
      this.pump(state);
      this.dropIfIdle(state);
      throw new LockBusyError(state.resource, 0, result.retryAfter);
    }
    const queued = this.enqueue(state, ttl, wait, started, true);
    if (state.wake) {
      state.wake = false;
      this.pump(state);
    } else this.scheduleRetry(state);
    return queued;
  }

  private enqueue(
    state: ResourceState,
    ttl: number,
    wait: number,
    started: number,
    front: boolean,
  ): Promise<HeldLock> {
    return new Promise<HeldLock>((resolve, reject) => {
      const remaining = wait - (performance.now() - started);
      const waiter: Waiter = { ttl, started, resolve, reject };
      if (remaining <= 0 && !front) {
        // wait 0 while this process holds, waits for or is trying this resource: busy, no queueing.
        this.metrics.acquisition('busy', (performance.now() - started) / 1_000);
        reject(new LockBusyError(state.resource, 0, this.retryAfter(state)));
        return;
      }
      waiter.timer = setTimeout(() => this.giveUp(state, waiter), Math.max(0, remaining));
      if (front) state.waiters.unshift(waiter);
      else state.waiters.push(waiter);
      this.onFirstWait();
      this.pump(state);
    });
  }

  private giveUp(state: ResourceState, waiter: Waiter): void {
    const i = state.waiters.indexOf(waiter);
    if (i < 0) return;
    state.waiters.splice(i, 1);
    const waited = performance.now() - waiter.started;
    this.metrics.acquisition('busy', waited / 1_000);
    waiter.reject(new LockBusyError(state.resource, Math.round(waited), this.retryAfter(state)));
    this.dropIfIdle(state);
  }

  /** Let the head of the queue try, unless an attempt is in flight or the lock is held here. */
  private pump(state: ResourceState): void {
    if (state.attempting || state.holders > 0 || state.waiters.length === 0 || this.closed) return;
    clearTimeout(state.retry);
    state.retry = undefined;
    state.attempting = true;
    state.wake = false;
    const ttl = state.waiters[0].ttl;
    state.attemptTtl = ttl;
    const reserve = Math.min(LOCAL_HANDOFF_BLOCK, state.waiters.length);
    this.authority.attempt(state.keys, ttl, this.authority.waiterId, reserve).then(
      (result) => this.settle(state, result, ttl),
      (err: unknown) => this.settle(state, { kind: 'unavailable', cause: err }, ttl),
    );
  }

  private settle(state: ResourceState, result: AttemptResult, ttl: number): void {
    state.attempting = false;
    if (result.kind === 'granted') {
      const waiter = state.waiters.shift();
      if (waiter) this.grant(state, waiter, result, ttl);
      else void this.authority.release(result.lease).catch(() => undefined);
      this.dropIfIdle(state);
      return;
    }
    if (result.kind === 'unavailable') {
      // Fail closed, and fast: every waiter of this resource hears it now rather than at its deadline.
      for (const w of state.waiters.splice(0)) {
        clearTimeout(w.timer);
        this.metrics.acquisition('unavailable', (performance.now() - w.started) / 1_000);
        w.reject(new LockUnavailableError(state.resource, 'acquire', { cause: result.cause }));
      }
      this.dropIfIdle(state);
      return;
    }
    state.hint = result.retryAfter;
    if (state.wake) this.pump(state);
    else this.scheduleRetry(state);
  }

  private grant(
    state: ResourceState,
    waiter: Waiter,
    granted: Extract<AttemptResult, { kind: 'granted' }>,
    ttl: number,
  ): void {
    clearTimeout(waiter.timer);
    state.holders++;
    waiter.resolve(this.newLock(state, granted, ttl, waiter.started));
  }

  private newLock(
    state: ResourceState,
    granted: Extract<AttemptResult, { kind: 'granted' }>,
    ttl: number,
    started: number,
  ): HeldLock {
    const now = performance.now();
    this.metrics.acquisition('acquired', (now - started) / 1_000);
    const block = { next: granted.fence + 1, last: granted.last };
    state.local = new HeldLock(state.resource, granted.fence, granted.lease, ttl, state.keys, now, block);
    return state.local;
  }

  /**
   * The wait hint of a LockBusyError (ms, at least 1), when Redis was not asked for this caller: the remaining
   * lease of the holder in this process when there is one; while a caller here is still acquiring it, the
   * lease that caller asks for (what it may hold if granted); else the other owner's remaining lease as Redis
   * last reported it.
   */
  private retryAfter(state: ResourceState): number {
    const local = state.holders > 0 && state.local?.state === 'held' ? state.local : undefined;
    if (local) return Math.max(1, Math.round(local.validUntil - Date.now()));
    return Math.max(1, Math.round(state.attempting ? Math.max(state.hint, state.attemptTtl) : state.hint));
  }

  /**
   * The fallback when no release message comes: retry just after the holder's lease ends if that is soon,
   * else after a jittered `retryInterval` (half to all of it), so waiting processes do not retry in step.
   */
  private scheduleRetry(state: ResourceState): void {
    if (state.waiters.length === 0 || this.closed) return;
    clearTimeout(state.retry);
    const delay =
      state.hint < this.retryInterval
        ? state.hint + 1 + Math.random() * 10
        : this.retryInterval * (0.5 + Math.random() / 2);
    state.retry = setTimeout(() => {
      state.retry = undefined;
      this.pump(state);
    }, delay);
  }

  private dropIfIdle(state: ResourceState): void {
    if (state.holders > 0 || state.waiters.length > 0 || state.attempting) return;
    clearTimeout(state.retry);
    if (this.states.get(state.keys.lock) === state) this.states.delete(state.keys.lock);
  }
}
