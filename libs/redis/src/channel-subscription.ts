import { BackoffTimer } from './backoff-timer';
import type { RedisConnection } from './managed-redis-client';
import { describeRedisError } from './redis.errors';

/** What a {@link ChannelSubscription} calls back. */
export interface ChannelSubscriptionOptions {
  /** Each message published on the channel. */
  onMessage: (message: string) => void;
  /**
   * Redis refused the SUBSCRIBE (NOPERM from an ACL without the channel, say) for a reason not reported since
   * it last accepted it: log it here; the SUBSCRIBE is sent again with a backoff.
   */
  onRefused?: (why: string) => void;
  /** Redis accepted the SUBSCRIBE after refusing it. */
  onAccepted?: () => void;
  /** First retry delay after a refusal, ms (doubles per refusal). Default 1 000. */
  retryMinMs?: number;
  /** Cap of the retry delay, ms. Default 30 000. */
  retryMaxMs?: number;
}

/** How long stop() waits for the UNSUBSCRIBE reply before it lets go. */
const UNSUBSCRIBE_TIMEOUT_MS = 1_000;

/**
 * One channel on a subscriber connection ({@link ManagedRedisClient.subscriber}) that stays subscribed.
 *
 * A SUBSCRIBE Redis refuses is sent again (1 s doubling to 30 s) until Redis accepts it, so fixing the ACL
 * needs no restart; and it is sent again on every `ready` of the connection, because ioredis re-subscribes
 * after a reconnect by itself and drops a refusal of that re-subscribe without a word. SUBSCRIBE is
 * idempotent: the re-send costs one round trip per reconnect.
 */
export class ChannelSubscription {
  private refusedWhy?: string;
  private started?: Promise<void>;
  private stopped = false;
  private readonly retry: BackoffTimer;

  constructor(
    private readonly connection: RedisConnection,
    readonly channel: string,
    private readonly options: ChannelSubscriptionOptions,
  ) {
    this.retry = new BackoffTimer(
      () => {
        if (this.refusedWhy !== undefined) void this.send();
      },
      options.retryMinMs,
      options.retryMaxMs,
    );
  }

  /**
   * Listen and send the SUBSCRIBE (the connection queues it until Redis is reachable). Settles when Redis
   * has answered the first SUBSCRIBE, accepted or refused; never rejects. Idempotent.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.started) {
      this.connection.on('message', this.onMessage);
      this.connection.on('ready', this.onReady);
      this.started = this.send();
    }
    return this.started;
  }

  /** Why Redis refuses the SUBSCRIBE while it stays refused (it is being sent again), else undefined. */
  refused(): string | undefined {
    return this.refusedWhy;
  }

  /** Stop listening and retrying, and UNSUBSCRIBE (waiting at most 1 s for the reply). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.retry.stop();
    if (!this.started) return;
    this.connection.off('message', this.onMessage);
    this.connection.off('ready', this.onReady);
    if (this.connection.status !== 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.connection.unsubscribe(this.channel).catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, UNSUBSCRIBE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }

  private send(): Promise<void> {
    return this.connection.subscribe(this.channel).then(
      () => {
        if (this.refusedWhy === undefined || this.stopped) return;
        this.refusedWhy = undefined;
        this.retry.reset();
        this.options.onAccepted?.();
      },
      (err: unknown) => {
        if (this.stopped) return;
        const why = describeRedisError(err);
        if (why !== this.refusedWhy) this.options.onRefused?.(why);
        this.refusedWhy = why;
        this.retry.schedule();
      },
    );
  }

  /** (Re)connected: subscribe again, so a re-subscribe Redis refused is seen (ioredis drops it silently). */
  private readonly onReady = (): void => {
    if (!this.stopped) void this.send();
  };

  private readonly onMessage = (channel: string, message: string): void => {
    if (channel === this.channel) this.options.onMessage(message);
  };
}
