import { RedisPoolTimeoutError } from './redis.errors';
import type { RedisPoolOptions } from './redis.interfaces';

/** What the pool needs to know about a connection; ioredis `Redis` and `Cluster` both fit. */
export interface PoolableConnection {
  ping(): Promise<unknown>;
  readonly status: string;
}

export interface PoolStats {
  size: number;
  idle: number;
  borrowed: number;
  waiters: number;
  maxSize: number;
  acquired: number;
  timeouts: number;
  created: number;
  destroyed: number;
  /** Total and worst time borrowers waited for a connection, in ms. */
  waitTimeTotal: number;
  waitTimeMax: number;
}

interface IdleEntry<C> {
  conn: C;
  since: number;
}

interface Waiter<C> {
  resolve: (conn: C) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  since: number;
}

export interface ConnectionPoolHooks<C> {
  create: () => Promise<C>;
  destroy: (conn: C) => Promise<void>;
}

/**
 * Small bounded pool of dedicated connections for work that needs a connection to itself
 * (WATCH/MULTI, blocking commands in user code). The shared command connection multiplexes everything
 * else, so this pool stays small: `maxSize` of 4 is plenty for most services.
 */
export class ConnectionPool<C extends PoolableConnection> {
  private readonly idle: IdleEntry<C>[] = [];
  private readonly borrowed = new Set<C>();
  private readonly waiters: Waiter<C>[] = [];
  private pending = 0;
  /** Connections being opened right now; `close()` waits for them and closes them too. */
  private readonly creating = new Set<Promise<C>>();
  private closed = false;
  private reaper?: NodeJS.Timeout;
  private readonly counts = {
    acquired: 0,
    timeouts: 0,
    created: 0,
    destroyed: 0,
    waitTimeTotal: 0,
    waitTimeMax: 0,
  };

  constructor(
    private readonly client: string,
    private readonly options: Required<RedisPoolOptions>,
    private readonly hooks: ConnectionPoolHooks<C>,
  ) {}

  /** Open `minSize` connections and start the idle reaper. Failures are left to the first borrower. */
  start(): void {
    if (this.reaper || this.closed) return;
    this.reaper = setInterval(() => this.reap(), this.options.reapInterval);
    this.reaper.unref();
    for (let i = this.size(); i < this.options.minSize; i++) {
      this.pending++;
      this.create().then(
        (conn) => {
          this.pending--;
          this.counts.created++;
          this.giveBack(conn);
        },
        () => {
          this.pending--;
        },
      );
    }
  }

  /** Borrow a connection, run `fn`, and give it back (destroyed instead when `fn` broke it). */
  async use<T>(fn: (conn: C) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    let broken = false;
    try {
      return await fn(conn);
    } catch (err) {
      broken = conn.status !== 'ready';
      throw err;
    } finally {
      this.release(conn, broken);
    }
  }

  /**
   * Borrow a connection; give it back with `release()`.
   * @throws RedisPoolTimeoutError when none is free within `acquireTimeout`
   */
  async acquire(): Promise<C> {
    if (this.closed) throw new Error(`The connection pool of Redis client "${this.client}" is closed.`);
    const started = Date.now();
    for (;;) {
      const entry = this.idle.pop();
      if (!entry) break;
      // Counted as pending while validated, so concurrent borrowers do not open one too many.
      this.pending++;
      const usable = await this.isUsable(entry).finally(() => this.pending--);
      if (usable) return this.lend(entry.conn, started);
      void this.destroy(entry.conn);
    }
    if (this.size() < this.options.maxSize) {
      this.pending++;
      try {
        const conn = await this.create();
        this.counts.created++;
        return this.lend(conn, started);
      } finally {
        this.pending--;
      }
    }
    return new Promise<C>((resolve, reject) => {
      const waiter: Waiter<C> = {
        resolve,
        reject,
        since: started,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          this.counts.timeouts++;
          reject(new RedisPoolTimeoutError(this.client, Date.now() - started, this.options.maxSize));
        }, this.options.acquireTimeout),
      };
      this.waiters.push(waiter);
    });
  }

  /** Give a borrowed connection back; `broken` connections are closed instead of reused. */
  release(conn: C, broken = false): void {
    if (!this.borrowed.delete(conn)) return;
    if (broken || this.closed || conn.status !== 'ready') {
      void this.destroy(conn);
      return;
    }
    this.giveBack(conn);
  }

  stats(): PoolStats {
    return {
      size: this.size(),
      idle: this.idle.length,
      borrowed: this.borrowed.size,
      waiters: this.waiters.length,
      maxSize: this.options.maxSize,
      ...this.counts,
    };
  }

  /** Reject waiters, close idle and borrowed connections, stop the reaper. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = undefined;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`The connection pool of Redis client "${this.client}" closed while waiting.`));
    }
    const opening = await Promise.allSettled([...this.creating]);
    const all = [...this.idle.splice(0).map((e) => e.conn), ...this.borrowed];
    for (const o of opening) if (o.status === 'fulfilled' && !all.includes(o.value)) all.push(o.value);
    this.borrowed.clear();
    await Promise.all(all.map((c) => this.destroy(c)));
  }

  private create(): Promise<C> {
    const opening = this.hooks.create();
    this.creating.add(opening);
    const forget = () => this.creating.delete(opening);
    opening.then(forget, forget);
    return opening;
  }

  private size(): number {
    return this.idle.length + this.borrowed.size + this.pending;
  }

  private giveBack(conn: C): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(this.lend(conn, waiter.since));
      return;
    }
    if (this.closed) {
      void this.destroy(conn);
      return;
    }
    this.idle.push({ conn, since: Date.now() });
  }

  private lend(conn: C, started: number): C {
    const waited = Date.now() - started;
    this.counts.acquired++;
    this.counts.waitTimeTotal += waited;
    if (waited > this.counts.waitTimeMax) this.counts.waitTimeMax = waited;
    this.borrowed.add(conn);
    return conn;
  }

  private async isUsable(entry: IdleEntry<C>): Promise<boolean> {
    if (entry.conn.status !== 'ready') return false;
    if (Date.now() - entry.since < this.options.validateAfterIdle) return true;
    try {
      await entry.conn.ping();
      return true;
    } catch {
      return false;
    }
  }

  private reap(): void {
    const cutoff = Date.now() - this.options.idleTimeout;
    // Oldest entries sit at the front (idle is used as a stack: push/pop at the back).
    while (this.idle.length > 0 && this.size() > this.options.minSize && this.idle[0].since < cutoff) {
      const entry = this.idle.shift()!;
      void this.destroy(entry.conn);
    }
  }

  private async destroy(conn: C): Promise<void> {
    this.counts.destroyed++;
    try {
      await this.hooks.destroy(conn);
    } catch {}
  }
}
