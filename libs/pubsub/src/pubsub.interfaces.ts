/** Options of `PubSubModule.forRoot()`. Every field is optional; `PUBSUB_*` variables fill what is not given. */
export interface PubSubModuleOptions {
  /** `@redwing/redis` client to use. @default 'default' */
  client?: string;
  /** Read `PUBSUB_*` variables (see the README) under the explicit options. @default true */
  useEnv?: boolean;
  /**
   * Largest serialized payload accepted by `publish`/`publishEvent`, in bytes.
   * @default 65_536
   */
  maxPayloadSize?: number;
  /** Resumable tier (Redis Streams) retention. */
  retention?: {
    /** Events kept per channel (approximate trimming, `MAXLEN ~`: never fewer). @default 1_000 */
    maxEvents?: number;
    /** Age after which events are trimmed (`MINID ~`) and an idle channel's stream expires, ms. @default 600_000 */
    maxAge?: number;
  };
  /** Resumable publishes made while Redis is unavailable wait here and are written in order on recovery. */
  offlineBuffer?: {
    /** Events held at most; beyond it the oldest is dropped (and counted). @default 1_000 */
    maxEvents?: number;
    /** Delay between write attempts while Redis stays down, ms. @default 500 */
    retryInterval?: number;
  };
  /** Events read per round trip when a subscriber catches up from the stream. @default 500 */
  readBatch?: number;
}

/** A message as an ephemeral `subscribe()` handler receives it. */
export interface PubSubMessage<T = unknown> {
  /** The channel it was published on (without the key prefix). */
  channel: string;
  /** The pattern that matched, for pattern subscriptions. */
  pattern?: string;
  /** What was published. */
  data: T;
  /** Event type, when it came from `publishEvent`. */
  type?: string;
  /** Stream id, when it came from the resumable tier. */
  id?: string;
  /** Publish time, epoch ms (the publisher's clock). */
  ts: number;
}

/** An event of the resumable tier: what `subscribeFrom` delivers (and the gateway's `event` message). */
export interface ResumableEvent<T = unknown> {
  /** Redis Stream id (`<ms>-<seq>`), increasing per channel; pass the last one seen to resume. */
  id: string;
  channel: string;
  /** Event type, e.g. `card.created`. */
  type: string;
  data: T;
  /** Publish time, epoch ms. */
  ts: number;
}

/**
 * Why a resumable subscriber cannot be given the events it missed: `trimmed` (older than retention),
 * `expired` (the channel's stream no longer exists: idle longer than `maxAge`, or Redis lost its data),
 * `unknown-id` (an id the channel never issued, e.g. from before a Redis data loss).
 */
export type ResyncReason = 'trimmed' | 'expired' | 'unknown-id';

/** What a `subscribeFrom` handler receives: the next event, or a notice that some events are gone. */
export type ResumableDelivery<T = unknown> =
  | { kind: 'event'; event: ResumableEvent<T> }
  | {
      kind: 'resync-required';
      channel: string;
      reason: ResyncReason;
      /** Delivery continues after this id (the channel's newest at the time): reload state, then carry on. */
      resumeAfter: string;
    };

/** A subscription; `unsubscribe()` is idempotent. */
export interface PubSubSubscription {
  /** Resolves when the subscription is active in Redis (or at once when Redis is down: it activates later). */
  readonly ready: Promise<void>;
  unsubscribe(): Promise<void>;
}

/** What `publishEvent` did with an event. */
export type PublishReceipt =
  | { status: 'written'; id: string }
  /** Redis is unavailable: held in the offline buffer, written (and delivered) in order on recovery. */
  | { status: 'buffered'; id: null };

/** Connection state of the instance's pub/sub: `degraded` while its subscriber connection is down. */
export type PubSubState = 'up' | 'degraded';

/** Counters since start (also exported as metrics when `@redwing/metrics` is present). */
export interface PubSubStats {
  state: PubSubState;
  published: { ephemeral: number; resumable: number };
  delivered: number;
  buffered: number;
  dropped: Record<string, number>;
  subscriberReconnects: number;
  catchUps: number;
  resyncs: number;
  /**
   * Channels and patterns whose SUBSCRIBE Redis refuses (an ACL without the channel, say): they get nothing
   * from other instances until it is accepted. Each is sent again (1 s doubling to 30 s, and on every
   * reconnect), so fixing the ACL needs no restart. Normally empty.
   */
  refused: string[];
}
