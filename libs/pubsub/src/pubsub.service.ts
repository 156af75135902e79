import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  REDWING_METRICS,
  RedisClientManager,
  runInSpan,
  type ManagedRedisClient,
  type MetricsRegistry,
} from '@redwing/redis';
import { resolvePubSubConfig, type ResolvedPubSubConfig } from './pubsub.config';
import { PubSubChannelError } from './pubsub.errors';
import type {
  PublishReceipt,
  PubSubMessage,
  PubSubModuleOptions,
  PubSubState,
  PubSubStats,
  PubSubSubscription,
  ResumableDelivery,
} from './pubsub.interfaces';
import { PubSubMetrics } from './pubsub.metrics';
import { PUBSUB_MODULE_OPTIONS } from './pubsub.module-definition';
import { EphemeralTier, type Handler } from './ephemeral-tier';
import { ResumableTier } from './resumable-tier';
import type { Envelope } from './resumable-cursor';
import { traceparentOf } from './tracing';

const CHANNEL = /^[A-Za-z0-9_.:-]{1,200}$/;
/** Publish spans: PRODUCER, children of the active span; deliveries link to them (see tracing.ts). */
const PRODUCER = { kind: 'producer' } as const;

/**
 * Pub/sub between every instance of the app on Redis, in two tiers. **Ephemeral** (`publish`/`subscribe`):
 * Redis pub/sub, sharded (`SPUBLISH`/`SSUBSCRIBE`) on Cluster, delivered to this instance's handlers at once
 * even while Redis is down. **Resumable** (`publishEvent`/`subscribeFrom`): every event is also appended to a
 * bounded Redis Stream and gets an id; a subscriber resumes after the last id it saw and receives exactly
 * the events it missed, in order, or a `resync-required` delivery when they are older than retention.
 *
 * One subscriber connection per instance however many handlers; it re-subscribes after every reconnect,
 * and resumable subscribers then catch up from the stream by themselves.
 *
 * A facade: it checks names and sizes, builds the envelopes and spans, and delegates to the ephemeral tier
 * (`ephemeral-tier.ts`: subscriber connection, subscriptions, state) and the resumable tier
 * (`resumable-tier.ts`: streams, offline buffer, `subscribeFrom` cursors).
 */
@Injectable()
export class PubSubService implements OnModuleInit, OnApplicationShutdown {
  /** This instance's id in every envelope (its own ephemeral messages come back from Redis and are skipped). */
  readonly origin = randomBytes(6).toString('base64url');
  private readonly config: ResolvedPubSubConfig;
  private readonly logger = new Logger('PubSub');
  private readonly metrics: PubSubMetrics;
  private readonly client: ManagedRedisClient;
  private readonly ephemeral: EphemeralTier;
  private readonly resumable: ResumableTier;
  private offState?: () => void;
  private closed = false;

  constructor(
    @Inject(PUBSUB_MODULE_OPTIONS) options: PubSubModuleOptions,
    private readonly manager: RedisClientManager,
    @Optional() @Inject(REDWING_METRICS) registry?: MetricsRegistry,
  ) {
    this.config = resolvePubSubConfig(options ?? {});
    this.client = manager.get(this.config.client);
    const namespace = `${manager.keyPrefix}:pubsub:`;
    this.metrics = new PubSubMetrics(
      registry,
      () => this.resumable.buffered,
      () => this.ephemeral.getState() === 'up',
      () => this.ephemeral.refused().length,
    );
    const shared = { client: this.client, namespace, metrics: this.metrics, logger: this.logger };
    this.ephemeral = new EphemeralTier({
      ...shared,
      origin: this.origin,
      reconnected: () => this.resumable.reconnected(),
    });
    this.resumable = new ResumableTier({ ...shared, config: this.config, live: this.ephemeral });
  }

  /** Open the subscriber connection and watch the client for recovery (never waits for Redis). */
  onModuleInit(): void {
    this.ephemeral.start();
    this.offState = this.manager.events.on('state', (e) => {
      if (e.client === this.client.name && e.current === 'ready') this.resumable.flush();
    });
  }

  /** Current state: `degraded` while the subscriber connection is down (local delivery continues). */
  getState(): PubSubState {
    return this.ephemeral.getState();
  }

  /** Be told when the subscriber connection goes down (`degraded`) and is subscribed again (`up`). */
  onStateChange(listener: (state: PubSubState) => void): () => void {
    return this.ephemeral.onStateChange(listener);
  }

  /** Counters since start. */
  stats(): PubSubStats {
    return this.metrics.snapshot(
      this.ephemeral.getState(),
      this.resumable.buffered,
      this.ephemeral.refused(),
    );
  }

  /**
   * Publish an ephemeral message to every subscriber of `channel` on every instance. This instance's
   * handlers get it at once (also while Redis is down); other instances get it through Redis.
   * @returns whether it was sent to Redis (false: Redis unavailable, only local handlers got it)
   * @throws PubSubChannelError for an invalid channel name or a payload over `maxPayloadSize`
   */
  publish<T>(channel: string, payload: T): Promise<boolean> {
    this.checkChannel(channel);
    return runInSpan(
      'pubsub.publish',
      {
        'messaging.system': 'redis',
        'messaging.operation.type': 'send',
        'messaging.destination.name': channel,
        'redwing.pubsub.tier': 'ephemeral',
      },
      (span) => {
        const env: Envelope = { o: this.origin, c: channel, d: payload, ts: Date.now() };
        const tp = traceparentOf(span);
        if (tp) env.tp = tp;
        const json = this.serialize(channel, env);
        this.metrics.counts.publishedEphemeral++;
        return this.ephemeral.publish(channel, env, json);
      },
      PRODUCER,
    );
  }

  /**
   * Publish a resumable event: appended to the channel's stream (bounded by `retention`) with a new id, then
   * delivered to every subscriber on every instance, this one included (through Redis, so every subscriber
   * sees the same ids in the same order). While Redis is unavailable the event waits in the offline buffer
   * and is written, in order, on recovery.
   * @throws PubSubChannelError for an invalid channel name or a payload over `maxPayloadSize`
   */
  publishEvent<T>(channel: string, event: { type: string; data: T }): Promise<PublishReceipt> {
    this.checkChannel(channel);
    return runInSpan(
      'pubsub.publish',
      {
        'messaging.system': 'redis',
        'messaging.operation.type': 'send',
        'messaging.destination.name': channel,
        'redwing.pubsub.tier': 'resumable',
        'redwing.pubsub.type': event.type,
      },
      async (span): Promise<PublishReceipt> => {
        const env: Envelope = { o: this.origin, c: channel, t: event.type, d: event.data, ts: Date.now() };
        const tp = traceparentOf(span);
        if (tp) env.tp = tp;
        const item = { channel, json: this.serialize(channel, env) };
        this.metrics.counts.publishedResumable++;
        const receipt = await this.resumable.publish(item);
        if (receipt.id !== null) span.setAttribute('messaging.message.id', receipt.id);
        return receipt;
      },
      PRODUCER,
    );
  }

  /**
   * Handle ephemeral messages (and the live copies of resumable events) of a channel, or of a pattern
   * (`*`, `?`; not on Cluster, where channels are sharded).
   * @throws PubSubChannelError for an invalid name, or a pattern on Cluster
   */
  subscribe<T = unknown>(
    channelOrPattern: string,
    handler: (message: PubSubMessage<T>) => void,
  ): PubSubSubscription {
    const h = handler as Handler;
    if (/[*?]/.test(channelOrPattern)) return this.ephemeral.subscribePattern(channelOrPattern, h);
    this.checkChannel(channelOrPattern);
    return this.ephemeral.subscribe(channelOrPattern, h);
  }

  /**
   * Receive a channel's resumable events after `lastId` (exclusive), in order and exactly once: first the
   * ones already in the stream, then live ones. Without `lastId`, only events published from now on;
   * `'0-0'` means everything still retained. When events after `lastId` are gone (older than retention, or
   * the stream expired), the handler gets `{ kind: 'resync-required', reason }` and then continues with newer
   * events — never a silent hole. After a Redis outage every subscriber catches up by itself.
   * @throws PubSubChannelError for an invalid channel name or `lastId`
   */
  subscribeFrom<T = unknown>(
    channel: string,
    lastId: string | undefined,
    handler: (delivery: ResumableDelivery<T>) => void,
  ): PubSubSubscription {
    this.checkChannel(channel);
    if (lastId !== undefined && !/^\d{1,15}-\d{1,15}$/.test(lastId)) {
      throw new PubSubChannelError(channel, 'lastId must be a stream id like "1700000000000-0"');
    }
    return this.resumable.subscribeFrom(channel, lastId, handler);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.offState?.();
    const unwritten = this.resumable.close();
    if (unwritten)
      this.logger.warn(`${unwritten} resumable event(s) were still waiting for Redis at shutdown`);
    await this.ephemeral.close();
  }

  // ---------------------------------------------------------------------------------------------

  private serialize(channel: string, env: Envelope): string {
    const json = JSON.stringify(env);
    if (json.length > this.config.maxPayloadSize && Buffer.byteLength(json) > this.config.maxPayloadSize) {
      throw new PubSubChannelError(
        channel,
        `payload is over maxPayloadSize (${this.config.maxPayloadSize} bytes); publish an id and let subscribers fetch the rest`,
      );
    }
    return json;
  }

  private checkChannel(channel: string): void {
    if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
      throw new PubSubChannelError(String(channel), 'a channel name is 1-200 of A-Z a-z 0-9 _ . : -');
    }
  }
}
