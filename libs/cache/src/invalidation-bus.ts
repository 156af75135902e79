import type { Logger } from '@nestjs/common';
import type { ManagedRedisClient, RedisConnection } from '@redwing/redis';
import type { CacheKeys } from './cache-keys';

/** What one invalidation message carries. Sent as `<seq>|<json>`; seq 0 = a wake-up without a number. */
export interface InvalidationMessage {
  /** Origin instance id (an instance skips the invalidations it sent itself). */
  o: string;
  /** Keys written or deleted: [profile, key]. */
  k?: Array<[string, string]>;
  /** Tags invalidated (all profiles). */
  t?: string[];
  /** Key prefixes deleted: [profile, prefix] ('' = the whole profile). */
  p?: Array<[string, string]>;
  /** Leases released after a failed load (wakes waiters; invalidates nothing). */
  l?: Array<[string, string]>;
}

/** What the bus calls back into. */
export interface BusHandlers {
  /** Apply a received message; `own` when this instance sent it. */
  apply(message: InvalidationMessage, own: boolean): void;
  /** Messages may have been missed: drop every L1 entry. */
  flush(reason: 'resync' | 'gap'): void;
}

/** The Redis commands the bus needs (the cache's `RedisTier` provides them). */
export interface BusStore {
  /** Publishes a body with the next sequence number; -1 when the counter was reset. */
  publishInvalidation(body: string): Promise<number>;
  /** The current sequence number (0 before the first message). */
  readEpoch(): Promise<number>;
}

/** What an {@link InvalidationBus} is built from. */
export interface BusOptions {
  /** The client whose shared subscriber connection the bus listens on. */
  client: ManagedRedisClient;
  keys: CacheKeys;
  store: BusStore;
  /** This instance's id (messages it sent come back with it). */
  origin: string;
  handlers: BusHandlers;
  logger: Logger;
}

/** Most operations one message carries; bigger batches go out as several messages. */
const MAX_BATCH = 500;

/**
 * Cross-instance L1 invalidation over Redis pub/sub, with detection of missed messages.
 *
 * Every message gets the next number of a counter in Redis (one script: INCR + PUBLISH), so messages are
 * totally ordered. A subscriber that sees a number that is not the last one + 1, or that finds the counter
 * moved while it was disconnected, knows it missed something and empties its L1 (`flush`). Until that check
 * has passed after a (re)connect, the bus reports `synced = false` and the cache does not read from L1 while
 * Redis itself is reachable. Publishes issued in the same event-loop turn are merged into one message.
 */
export class InvalidationBus {
  private synced = false;
  private lastSeq: number | undefined;
  private seqAtDisconnect: number | undefined;
  private seenDuringResync = 0;
  private resyncing = false;
  private resyncWanted = false;
  private stopped = false;
  private sub: RedisConnection | undefined;
  private retry: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private batch: { message: InvalidationMessage; size: number; done: Promise<void> } | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  readonly counters = { published: 0, received: 0, flushes: 0, resets: 0 };
  readonly origin: string;
  private readonly client: ManagedRedisClient;
  private readonly keys: CacheKeys;
  private readonly store: BusStore;
  private readonly handlers: BusHandlers;
  private readonly logger: Logger;

  constructor(options: BusOptions) {
    ({
      client: this.client,
      keys: this.keys,
      store: this.store,
      origin: this.origin,
      handlers: this.handlers,
      logger: this.logger,
    } = options);
  }

  /** True while messages are known to arrive: subscribed, and no message missed since. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** Subscribe (on the client's shared subscriber connection) and check the sequence. Never waits for Redis. */
  start(): void {
    const sub = this.client.subscriber();
    this.sub = sub;
    sub.on('message', this.onMessage);
    sub.on('ready', this.onReady);
    sub.on('close', this.onDown);
    sub.on('end', this.onDown);
    if (sub.status === 'ready') this.onReady();
  }

  /**
   * Publish an invalidation to every other instance. Operations published in the same event-loop turn share
   * one message. Rejects when Redis is unavailable (the caller defers it).
   */
  publish(part: Omit<InvalidationMessage, 'o'>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    let b = this.batch;
    if (!b) {
      const message: InvalidationMessage = { o: this.origin };
      const done = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          if (this.batch?.message === message) this.batch = undefined;
          this.send(message).then(resolve, reject);
        });
      });
      done.catch(() => undefined);
      b = this.batch = { message, size: 0, done };
    }
    for (const field of ['k', 't', 'p', 'l'] as const) {
      const items = part[field] as unknown[] | undefined;
      if (!items?.length) continue;
      ((b.message[field] ??= []) as unknown[]).push(...items);
      b.size += items.length;
    }
    const done = b.done;
    if (b.size >= MAX_BATCH) this.batch = undefined;
    return done;
  }

  /** Stop listening; sends what is batched (best effort), unsubscribes our channel only. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const pending = this.batch?.done;
    this.stopped = true;
    this.synced = false;
    if (this.retry) {
      clearTimeout(this.retry.timer);
      this.retry.resolve();
    }
    await Promise.allSettled([pending, ...this.inFlight]);
    const sub = this.sub;
    if (!sub) return;
    sub.off('message', this.onMessage);
    sub.off('ready', this.onReady);
    sub.off('close', this.onDown);
    sub.off('end', this.onDown);
    if (sub.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        sub.unsubscribe(this.keys.channel).catch(() => undefined),
        new Promise((r) => (timer = setTimeout(r, this.client.config.commandTimeout))),
      ]);
      clearTimeout(timer);
    }
  }

  private async send(message: InvalidationMessage): Promise<void> {
    const p = this.store.publishInvalidation(JSON.stringify(message)).then((seq) => {
      this.counters.published++;
      if (seq === -1) {
        this.counters.resets++;
        this.logger.warn(
          `${this.keys.epoch} did not hold an integer and was reset; something else writes into the cache ` +
            `namespace. Other instances flush their L1 once.`,
        );
      }
    });
    this.inFlight.add(p);
    try {
      await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  private readonly onMessage = (channel: string, raw: string): void => {
    if (channel !== this.keys.channel) return;
    const bar = raw.indexOf('|');
    let message: InvalidationMessage;
    try {
      message = JSON.parse(raw.slice(bar + 1)) as InvalidationMessage;
    } catch {
      this.logger.warn(`ignored a malformed message on ${channel}`);
      return;
    }
    const seq = Number(raw.slice(0, bar));
    this.counters.received++;
    if (seq > 0) {
      if (this.synced) {
        if (this.lastSeq !== undefined && seq !== this.lastSeq + 1) this.flush('gap');
        this.lastSeq = seq;
      } else {
        this.seenDuringResync = Math.max(this.seenDuringResync, seq);
      }
    }
    this.handlers.apply(message, message.o === this.origin);
  };

  private readonly onReady = (): void => {
    this.resyncWanted = true;
    void this.resync();
  };

  private readonly onDown = (): void => {
    if (this.synced) this.seqAtDisconnect = this.lastSeq;
    this.synced = false;
  };

  private flush(reason: 'resync' | 'gap'): void {
    this.counters.flushes++;
    this.handlers.flush(reason);
  }

  /**
   * After every (re)connect: make sure our channel is subscribed, then read the sequence counter. If it moved
   * since we were last in sync (or we never were), messages may have been missed: flush L1. Retries with
   * back-off while the command connection is down.
   */
  private async resync(): Promise<void> {
    if (this.resyncing) return;
    this.resyncing = true;
    try {
      while (this.resyncWanted && !this.stopped) {
        this.resyncWanted = false;
        this.seenDuringResync = 0;
        for (let attempt = 0; !this.stopped && !this.resyncWanted; attempt++) {
          const sub = this.sub;
          if (!sub || sub.status !== 'ready') return;
          try {
            await this.withTimeout(sub.subscribe(this.keys.channel));
            const epoch = await this.store.readEpoch();
            if (this.stopped || this.resyncWanted || sub.status !== 'ready') break;
            if (this.seqAtDisconnect === undefined || epoch !== this.seqAtDisconnect) this.flush('resync');
            this.lastSeq = Math.max(epoch, this.seenDuringResync);
            this.synced = true;
            break;
          } catch {
            await this.pause(Math.min(1_000, 50 * 2 ** attempt));
          }
        }
      }
    } finally {
      this.resyncing = false;
    }
  }

  private async withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('subscribe timed out')),
            this.client.config.commandTimeout,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.retry = undefined;
        resolve();
      }, ms);
      this.retry = { timer, resolve };
    });
  }
}
