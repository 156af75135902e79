import type { RawLimitState } from './local-limiter';
import type { LeaseReply } from './scripts/lease-fixed-window.script';

/** What the lease counter needs of a limit. */
export interface LeaseLimit {
  points: number;
  duration: number;
  blockDuration: number;
}

/** The Redis side of leasing: one call of the lease script (see `lease-fixed-window.script.ts`). */
export interface LeaseStore {
  lease(
    limit: LeaseLimit,
    key: string,
    args: { cost: number; want: number; share: number; giveBack: number; giveBackAt: number },
  ): Promise<LeaseReply>;
}

/** How slices are sized and how long they live. */
export interface LeaseTuning {
  /** A slice should last about this long at the instance's current rate, ms. */
  targetMs: number;
  /** A slice is spent for at most this long after its grant, then given back (and refusals rechecked), ms. */
  maxAgeMs: number;
  /** Largest slice asked for. */
  maxSlice: number;
  /** A slice is at most `free / share` of the window's unreserved points (at least the request's cost). */
  share: number;
  /** Leases kept in memory (older ones are dropped; their unspent points expire with their window). */
  maxEntries: number;
}

/** Waits for another request's lease before a request sends its own. */
const MAX_WAITS = 3;

export const DEFAULT_LEASE_TUNING: Omit<LeaseTuning, 'share' | 'maxEntries'> = {
  targetMs: 20,
  maxAgeMs: 1_000,
  maxSlice: 10_000,
};

/** Counters of the lease traffic since start. */
export interface LeaseStats {
  /** Round trips of the lease script (grants, refusals and give-backs). */
  requests: number;
  /** Points granted to this instance in slices. */
  granted: number;
  /** Unspent points offered back (taken back by Redis when their window still lasted). */
  returned: number;
  /** Requests decided from a slice in memory (no round trip). */
  local: number;
  /** Leases in memory now. */
  entries: number;
}

interface Lease {
  /** Unspent points of the slice. */
  left: number;
  /** Points of the window not handed out to any instance, at the last grant. */
  free: number;
  /** Local ms: the slice is spent only before this (the window's end or the slice's maximum age). */
  validUntil: number;
  /** Local ms: the window's end as seen from here (send time + PTTL, so never later than Redis's). */
  windowEnd: number;
  /** PEXPIRETIME of the window the slice came from (its identity for a give-back). */
  expireAt: number;
  /** Local ms: refuse without asking Redis until then. */
  deniedUntil: number;
  /** The next slice to ask for. */
  size: number;
  /** Local ms of the last grant, 0 before the first. */
  grantedAt: number;
  /** A lease request in flight for this key; later requests wait for it instead of sending their own. */
  pending: Promise<unknown> | undefined;
  /** Points the requests waiting for `pending` need. */
  waiting: number;
  /** Lease requests for this key in flight. */
  inFlight: number;
  /** The limit the slice belongs to (for a give-back). */
  limit: LeaseLimit;
}

/**
 * Leased counting of fixed windows: an instance takes a slice of a window's points from Redis atomically and
 * admits requests from it in memory, so most requests cost no round trip.
 *
 * Why admissions never exceed the limit: Redis hands out at most `points` per window (granted points are
 * counted when granted); a slice is spent only before `send time + PTTL`, which is never later than the
 * window's real end, and unspent points go back only into the window they came from (`PEXPIRETIME` match).
 *
 * Slices adapt: each new slice doubles when the last one lasted under `targetMs`, halves when it lasted over
 * 4 × `targetMs`, and Redis caps it at `free / share` so slices shrink near the limit. The price is
 * under-admission: points in a slice of an instance that stops receiving that key are unavailable to the
 * others until the slice is given back (at its next request or by {@link giveBackIdle} once it is
 * `maxAgeMs` old) or its window ends.
 */
export class LeaseCounter {
  private readonly leases = new Map<string, Lease>();
  private readonly counts = { requests: 0, granted: 0, returned: 0, local: 0 };

  constructor(
    private readonly store: LeaseStore,
    private readonly tuning: LeaseTuning,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Consume `cost` points of `key`: synchronously from the slice in memory when it can, otherwise with one
   * lease request (shared with concurrent requests for the same key). Rejects with the connection's error.
   */
  consume(limit: LeaseLimit, key: string, cost: number): RawLimitState | Promise<RawLimitState> {
    return this.take(key, cost) ?? this.acquire(limit, key, cost, 0);
  }

  /** The decision from memory, or undefined when Redis must be asked. */
  take(key: string, cost: number): RawLimitState | undefined {
    const lease = this.leases.get(key);
    if (!lease) return undefined;
    const now = this.clock();
    if (lease.left >= cost && now < lease.validUntil) {
      lease.left -= cost;
      this.counts.local++;
      return {
        allowed: true,
        remaining: lease.free + lease.left,
        retryAfter: 0,
        reset: lease.windowEnd - now,
      };
    }
    if (lease.deniedUntil > now) {
      this.counts.local++;
      const wait = Math.max(1, lease.windowEnd - now);
      return { allowed: false, remaining: 0, retryAfter: wait, reset: wait };
    }
    return undefined;
  }

  /**
   * Give back the unspent points of slices that are `maxAgeMs` old (instances that stopped receiving a key),
   * and forget leases that can no longer be spent (`all`: every lease, at shutdown). Errors are ignored: the
   * points then expire with their window (under-admission, never over-admission).
   */
  giveBackIdle(all = false): Promise<void> {
    const now = this.clock();
    const calls: Array<Promise<unknown>> = [];
    for (const [key, lease] of this.leases) {
      if (lease.pending || (!all && (now < lease.validUntil || now < lease.deniedUntil))) continue;
      if (lease.left > 0 && now < lease.windowEnd) {
        const giveBack = lease.left;
        lease.left = 0;
        this.counts.requests++;
        this.counts.returned += giveBack;
        calls.push(
          this.store
            .lease(lease.limit, key, { cost: 0, want: 0, share: 1, giveBack, giveBackAt: lease.expireAt })
            .catch(() => undefined),
        );
      }
      this.leases.delete(key);
    }
    return Promise.all(calls).then(() => undefined);
  }

  /** Forget the lease of `key` (after a block or delete on this instance); unspent points expire with it. */
  drop(key: string): void {
    this.leases.delete(key);
  }

  /** Recheck Redis at the next request of `key` (after a reward or penalty on this instance). */
  recheck(key: string): void {
    const lease = this.leases.get(key);
    if (lease) lease.deniedUntil = 0;
  }

  /** Forget every lease (Redis became unavailable: the insurance limiter decides until it is back). */
  clear(): void {
    this.leases.clear();
  }

  get size(): number {
    return this.leases.size;
  }

  stats(): LeaseStats {
    return { ...this.counts, entries: this.leases.size };
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Wait for the lease in flight for `key` (its slice is sized for the waiting requests too), then take from
   * it; at most `MAX_WAITS` waits, then a request of our own.
   */
  private acquire(
    limit: LeaseLimit,
    key: string,
    cost: number,
    waits: number,
  ): RawLimitState | Promise<RawLimitState> {
    const lease = this.leases.get(key);
    const pending = lease?.pending;
    if (!lease || !pending || waits >= MAX_WAITS) return this.request(limit, key, cost);
    lease.waiting += cost;
    const retry = () => {
      lease.waiting -= cost;
      return this.take(key, cost) ?? this.acquire(limit, key, cost, waits + 1);
    };
    return pending.then(retry, retry);
  }

  private request(limit: LeaseLimit, key: string, cost: number): Promise<RawLimitState> {
    const sentAt = this.clock();
    const lease = this.lease(key, limit);
    const { tuning } = this;
    if (lease.grantedAt > 0) {
      const lasted = sentAt - lease.grantedAt;
      if (lease.left < cost && lasted < tuning.targetMs)
        lease.size = Math.min(lease.size * 2, tuning.maxSlice);
      else if (lasted > 4 * tuning.targetMs) lease.size = Math.max(1, Math.floor(lease.size / 2));
    }
    // What is left of the old slice can no longer be spent here: give it back in the same call.
    const giveBack = sentAt < lease.windowEnd ? lease.left : 0;
    lease.left = 0;
    // Requests waiting for this key's slice are served by this one too.
    const want = Math.min(Math.max(lease.size, cost + lease.waiting), tuning.maxSlice);
    lease.size = Math.max(lease.size, want);
    const args = {
      cost,
      want: Math.max(cost, want),
      share: tuning.share,
      giveBack,
      giveBackAt: lease.expireAt,
    };
    this.counts.requests++;
    this.counts.returned += giveBack;
    lease.inFlight++;
    const reply: Promise<RawLimitState> = this.store.lease(limit, key, args).then(
      (r) => {
        lease.inFlight--;
        if (lease.pending === reply) lease.pending = undefined;
        const state = this.settle(key, lease, cost, r, sentAt);
        // Refused while another request for this key is in flight: its slice may serve this one.
        if (state.allowed || lease.inFlight === 0 || !lease.pending) return state;
        const retry = () => this.take(key, cost) ?? state;
        return lease.pending.then(retry, retry);
      },
      (err: unknown) => {
        lease.inFlight--;
        if (lease.pending === reply) lease.pending = undefined;
        throw err;
      },
    );
    lease.pending = reply;
    return reply;
  }

  private settle(key: string, lease: Lease, cost: number, reply: LeaseReply, sentAt: number): RawLimitState {
    const [granted, free, pttl, expireAt] = reply;
    if (this.leases.get(key) !== lease) {
      // Dropped while the request was in flight (block, delete, outage): decide this request only.
      return granted > 0
        ? { allowed: true, remaining: free + granted - cost, retryAfter: 0, reset: pttl }
        : { allowed: false, remaining: 0, retryAfter: Math.max(1, pttl), reset: Math.max(1, pttl) };
    }
    const now = this.clock();
    const windowEnd = sentAt + pttl;
    // Unspent points of another window (or of a window a block replaced) must not be spent in this one.
    if (lease.expireAt !== expireAt) lease.left = 0;
    lease.expireAt = expireAt;
    lease.windowEnd = windowEnd;
    lease.free = free;
    if (granted > 0) {
      this.counts.granted += granted;
      lease.left += granted - cost;
      lease.grantedAt = sentAt;
      lease.validUntil = Math.min(windowEnd, sentAt + this.tuning.maxAgeMs);
      lease.deniedUntil = 0;
      return {
        allowed: true,
        remaining: free + lease.left,
        retryAfter: 0,
        reset: Math.max(0, windowEnd - now),
      };
    }
    // Remember the refusal only when no other request for this key is in flight (it may bring a slice).
    if (lease.inFlight === 0) lease.deniedUntil = Math.min(windowEnd, sentAt + this.tuning.maxAgeMs);
    const wait = Math.max(1, windowEnd - now);
    return { allowed: false, remaining: 0, retryAfter: wait, reset: wait };
  }

  private lease(key: string, limit: LeaseLimit): Lease {
    let lease = this.leases.get(key);
    if (lease) return lease;
    if (this.leases.size >= this.tuning.maxEntries) {
      // The oldest lease (Map order is creation order); its unspent points expire with its window.
      const oldest = this.leases.keys().next();
      if (!oldest.done) this.leases.delete(oldest.value);
    }
    lease = {
      left: 0,
      free: 0,
      validUntil: 0,
      windowEnd: 0,
      expireAt: -2,
      deniedUntil: 0,
      size: 1,
      grantedAt: 0,
      pending: undefined,
      waiting: 0,
      inFlight: 0,
      limit,
    };
    this.leases.set(key, lease);
    return lease;
  }
}
