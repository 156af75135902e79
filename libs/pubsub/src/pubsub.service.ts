import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import {
  defineScripts,
  describeRedisError,
  isRedisUnavailable,
  REDWING_METRICS,
  RedisClientManager,
  runInSpan,
  type ManagedRedisClient,
  type MetricsRegistry,
  type RedisConnection,
  type RedwingSpan,
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
import { OfflineBuffer, type BufferedEvent } from './offline-buffer';
import { ResumableCursor, type CursorHost, type Envelope } from './resumable-cursor';
import { appendEventScript } from './scripts/append-event.script';
import { readEventsScript, type ReadEventsReply } from './scripts/read-events.script';

const CHANNEL = /^[A-Za-z0-9_.:-]{1,200}$/;
const PATTERN = /^[A-Za-z0-9_.:*?-]{1,200}$/;
const MAX_PENDING = 10_000;

type Handler = (message: PubSubMessage<unknown>) => void;

interface ChannelEntry {
  channel: string;
  handlers: Set<Handler>;
  cursors: Set<ResumableCursor>;
  subscribed: Promise<void>;
}

interface PatternEntry {
  pattern: string;
  regex: RegExp;
  handlers: Set<Handler>;
  subscribed: Promise<void>;
}

/**
 * Pub/sub between every instance of the app on Redis, in two tiers. **Ephemeral** (`publish`/`subscribe`):
 * Redis pub/sub, sharded (`SPUBLISH`/`SSUBSCRIBE`) on Cluster, delivered to this instance's handlers at once
 * even while Redis is down. **Resumable** (`publishEvent`/`subscribeFrom`): every event is also appended to a
 * bounded Redis Stream and gets an id; a subscriber resumes after the last id it saw and receives exactly
 * the events it missed, in order, or a `resync-required` delivery when they are older than retention.
 *
 * One subscriber connection per instance however many handlers; it re-subscribes after every reconnect,
 * and resumable subscribers then catch up from the stream by themselves.
 */
@Injectable()
export class PubSubService implements OnModuleInit, OnApplicationShutdown {
  /** This instance's id in every envelope (its own ephemeral messages come back from Redis and are skipped). */
  readonly origin = randomBytes(6).toString('base64url');
  private readonly config: ResolvedPubSubConfig;
  private readonly logger = new Logger('PubSub');
  private readonly metrics: PubSubMetrics;
  private readonly client: ManagedRedisClient;
  private readonly namespace: string;
  private readonly sharded: boolean;
  private readonly scripts: ReturnType<typeof makeScripts>;
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly patterns = new Map<string, PatternEntry>();
  private readonly reads = new Map<string, Promise<ReadEventsReply>>();
  private readonly stateListeners = new Set<(state: PubSubState) => void>();
  private readonly buffer: OfflineBuffer;
  private readonly cursorHost: CursorHost;
  private sub?: RedisConnection;
  private state: PubSubState = 'degraded';
  private wasUp = false;
  private offState?: () => void;
  private closed = false;

  constructor(
    @Inject(PUBSUB_MODULE_OPTIONS) options: PubSubModuleOptions,
    private readonly manager: RedisClientManager,
    @Optional() @Inject(REDWING_METRICS) registry?: MetricsRegistry,
  ) {
    this.config = resolvePubSubConfig(options ?? {});
    this.client = manager.get(this.config.client);
    this.namespace = `${manager.keyPrefix}:pubsub:`;
    this.sharded = this.client.topology === 'cluster';
    this.scripts = makeScripts(this.client.command);
    this.buffer = new OfflineBuffer({
      ...this.config.offlineBuffer,
      write: (item) => this.append(item),
      isAvailable: () => this.client.isAvailable(),
      drop: (reason) => this.metrics.drop(reason),
      warn: (message) => this.logger.warn(message),
    });
    this.metrics = new PubSubMetrics(
      registry,
      () => this.buffer.size,
      () => this.state === 'up',
    );
    this.cursorHost = {
      readBatch: this.config.readBatch,
      maxPending: MAX_PENDING,
      retryDelay: this.config.offlineBuffer.retryInterval,
      read: (channel, after) => this.read(channel, after),
      delivered: () => this.metrics.counts.delivered++,
      resynced: () => this.metrics.counts.resyncs++,
      failed: (what, err) => this.logger.debug(`${what} failed (retrying): ${describeRedisError(err)}`),
    };
  }

  /** Open the subscriber connection and watch the client for recovery (never waits for Redis). */
  onModuleInit(): void {
    const sub = this.subscriber();
    if (sub.status === 'ready') void this.onSubscriberReady();
    this.offState = this.manager.events.on('state', (e) => {
      if (e.client === this.client.name && e.current === 'ready') void this.buffer.flush();
    });
  }

  /** Current state: `degraded` while the subscriber connection is down (local delivery continues). */
  getState(): PubSubState {
    return this.state;
  }

  /** Be told when the subscriber connection goes down (`degraded`) and is subscribed again (`up`). */
  onStateChange(listener: (state: PubSubState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Counters since start. */
  stats(): PubSubStats {
    return this.metrics.snapshot(this.state, this.buffer.size);
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
      { 'messaging.destination.name': channel, 'redwing.pubsub.tier': 'ephemeral' },
      (span) => {
        const env: Envelope = { o: this.origin, c: channel, d: payload, ts: Date.now() };
        const tp = traceparentOf(span);
        if (tp) env.tp = tp;
        const json = this.serialize(channel, env);
        this.metrics.counts.publishedEphemeral++;
        queueMicrotask(() => this.dispatch(channel, '', '', env));
        if (!this.client.isAvailable()) {
          this.metrics.drop('redis-unavailable');
          return Promise.resolve(false);
        }
        const message = `\n\n${json}`;
        const redisChannel = this.redisChannel(channel);
        const sent = this.sharded
          ? (this.client.command as Cluster).spublish(redisChannel, message)
          : this.client.command.publish(redisChannel, message);
        return sent.then(
          () => true,
          (err: unknown) => {
            if (!isRedisUnavailable(err)) throw err;
            this.metrics.drop('redis-unavailable');
            return false;
          },
        );
      },
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
        if (this.buffer.size > 0 || !this.client.isAvailable()) return this.hold(item);
        try {
          const id = await this.append(item);
          span.setAttribute('redwing.pubsub.id', id);
          return { status: 'written', id };
        } catch (err) {
          if (!isRedisUnavailable(err)) throw err;
          return this.hold(item);
        }
      },
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
    if (/[*?]/.test(channelOrPattern)) return this.subscribePattern(channelOrPattern, h);
    this.checkChannel(channelOrPattern);
    const entry = this.channelEntry(channelOrPattern);
    entry.handlers.add(h);
    return this.subscription(entry.subscribed, () => {
      entry.handlers.delete(h);
      return this.release(entry);
    });
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
    const entry = this.channelEntry(channel);
    const cursor = new ResumableCursor<T>(channel, lastId ?? '$', handler, this.cursorHost);
    entry.cursors.add(cursor as ResumableCursor);
    const ready = entry.subscribed.then(() => cursor.catchUp());
    return this.subscription(ready, () => {
      cursor.close();
      entry.cursors.delete(cursor as ResumableCursor);
      return this.release(entry);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.offState?.();
    const unwritten = this.buffer.stop();
    if (unwritten)
      this.logger.warn(`${unwritten} resumable event(s) were still waiting for Redis at shutdown`);
    for (const entry of this.channels.values()) for (const c of entry.cursors) c.close();
    const sub = this.sub;
    if (!sub) return;
    sub.removeListener('message', this.onMessage);
    sub.removeListener('pmessage', this.onPatternMessage);
    sub.removeListener('smessage', this.onMessage);
    sub.removeListener('ready', this.onReadyEvent);
    sub.removeListener('close', this.onDown);
    sub.removeListener('-subscriber', this.onDown);
    sub.removeListener('+subscriber', this.onReadyEvent);
    const ours = [...this.channels.keys()].map((c) => this.redisChannel(c));
    const patterns = [...this.patterns.keys()];
    this.channels.clear();
    this.patterns.clear();
    if (this.sharded) {
      await closeQuietly(sub);
    } else if (sub.status === 'ready') {
      // The standalone subscriber connection is shared with other libs: leave only our channels.
      await withTimeout(
        Promise.all([
          ours.length && sub.unsubscribe(...ours),
          patterns.length && sub.punsubscribe(...patterns),
        ]),
        this.client.config.commandTimeout,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------

  private subscriber(): RedisConnection {
    if (this.sub) return this.sub;
    let sub: RedisConnection;
    if (this.sharded) {
      // The manager's subscriber is a plain Cluster subscriber (one node, SUBSCRIBE); sharded channels need
      // a connection per shard, which ioredis manages with `shardedSubscribers`.
      const cluster = this.client.config.cluster!;
      sub = new Cluster(cluster.nodes, {
        ...cluster.options,
        enableOfflineQueue: true,
        shardedSubscribers: true,
        redisOptions: { ...cluster.options.redisOptions, commandTimeout: undefined },
      });
      sub.on('error', () => undefined);
      sub.on('smessage', this.onMessage);
      sub.on('-subscriber', this.onDown);
      sub.on('+subscriber', this.onReadyEvent);
      sub.connect().catch(() => undefined);
    } else {
      sub = this.client.subscriber();
      sub.on('message', this.onMessage);
      sub.on('pmessage', this.onPatternMessage);
    }
    sub.on('ready', this.onReadyEvent);
    sub.on('close', this.onDown);
    this.sub = sub;
    return sub;
  }

  private readonly onReadyEvent = (): void => void this.onSubscriberReady();

  /**
   * The subscriber connection is (again) ready: ioredis re-sends our subscriptions first; a PING on the same
   * connection answers only after they are processed, so the catch-up reads start once live delivery is on.
   */
  private async onSubscriberReady(): Promise<void> {
    const sub = this.sub;
    if (!sub || this.closed) return;
    if (!this.sharded)
      await withTimeout(
        (sub as { ping(): Promise<unknown> }).ping().catch(() => undefined),
        2_000,
      );
    if (this.closed || (sub.status !== 'ready' && !this.sharded)) return;
    const reconnect = this.wasUp;
    this.wasUp = true;
    if (reconnect) this.metrics.counts.reconnects++;
    if (this.state !== 'up') this.setState('up');
    if (!reconnect) return;
    for (const entry of this.channels.values()) {
      for (const cursor of entry.cursors) {
        this.metrics.counts.catchUps++;
        void cursor.catchUp();
      }
    }
  }

  private readonly onDown = (): void => {
    if (!this.closed && this.state !== 'degraded') this.setState('degraded');
  };

  private setState(state: PubSubState): void {
    this.state = state;
    if (state === 'degraded') this.logger.warn('subscriber connection lost; delivering local events only');
    else if (this.metrics.counts.reconnects > 0) this.logger.log('subscriber connection back; re-subscribed');
    for (const listener of this.stateListeners) {
      try {
        listener(state);
      } catch (err) {
        this.logger.warn(`a state listener threw: ${(err as Error)?.message}`);
      }
    }
  }

  private readonly onMessage = (redisChannel: string, message: string): void => {
    if (!redisChannel.startsWith(this.namespace)) return;
    this.receive(message, undefined);
  };

  private readonly onPatternMessage = (pattern: string, redisChannel: string, message: string): void => {
    if (!redisChannel.startsWith(this.namespace) || !this.patterns.has(pattern)) return;
    this.receive(message, pattern);
  };

  private receive(message: string, pattern: string | undefined): void {
    const a = message.indexOf('\n');
    const b = message.indexOf('\n', a + 1);
    if (a < 0 || b < 0) return;
    const id = message.slice(0, a);
    let env: Envelope;
    try {
      env = JSON.parse(message.slice(b + 1)) as Envelope;
    } catch {
      return;
    }
    // Own ephemeral messages were delivered locally when published.
    if (!id && env.o === this.origin) return;
    const prev = message.slice(a + 1, b);
    if (pattern) this.dispatchPattern(pattern, id, env);
    else this.dispatch(env.c, id, prev, env);
  }

  /** Deliver one message to this instance's handlers of its channel (and matching patterns for local ones). */
  private dispatch(channel: string, id: string, prev: string, env: Envelope): void {
    const entry = this.channels.get(channel);
    const fromRedis = id !== '' || env.o !== this.origin;
    if (!entry && (fromRedis || this.patterns.size === 0)) return;
    this.metrics.observeLatency(env.ts);
    const run = () => {
      if (entry) {
        const message = toMessage(env, id, undefined);
        for (const h of entry.handlers) this.call(h, message);
        if (id) for (const cursor of entry.cursors) cursor.onLive(id, prev, env);
      }
      // Local publishes never come back from Redis, so local pattern handlers are matched here.
      if (!fromRedis) {
        for (const p of this.patterns.values()) if (p.regex.test(channel)) this.runPattern(p, id, env);
      }
    };
    if (env.tp) {
      runInSpan(
        'pubsub.deliver',
        { 'messaging.destination.name': channel, 'redwing.pubsub.publish_traceparent': env.tp },
        run,
      );
    } else run();
  }

  private dispatchPattern(redisPattern: string, id: string, env: Envelope): void {
    const p = this.patterns.get(redisPattern);
    if (p) this.runPattern(p, id, env);
  }

  private runPattern(p: PatternEntry, id: string, env: Envelope): void {
    const message = toMessage(env, id, p.pattern);
    for (const h of p.handlers) this.call(h, message);
  }

  private call(handler: Handler, message: PubSubMessage<unknown>): void {
    this.metrics.counts.delivered++;
    try {
      handler(message);
    } catch (err) {
      this.metrics.drop('handler-error');
      this.logger.warn(`a subscribe handler of ${message.channel} threw: ${(err as Error)?.message}`);
    }
  }

  private channelEntry(channel: string): ChannelEntry {
    let entry = this.channels.get(channel);
    if (!entry) {
      const sub = this.subscriber();
      const redisChannel = this.redisChannel(channel);
      const subscribed = (
        this.sharded
          ? this.whenReady(sub).then(() => (sub as Cluster).ssubscribe(redisChannel))
          : sub.subscribe(redisChannel)
      ).then(
        () => undefined,
        (err: unknown) => this.logger.warn(`subscribe ${channel}: ${describeRedisError(err)}`),
      );
      entry = { channel, handlers: new Set(), cursors: new Set(), subscribed };
      this.channels.set(channel, entry);
    }
    return entry;
  }

  /**
   * On Cluster, SSUBSCRIBE only once the sharded subscribers exist: one sent from the offline queue while the
   * cluster connects lands on a connection whose messages are not forwarded.
   */
  private whenReady(sub: RedisConnection): Promise<void> {
    if (sub.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => sub.once('ready', () => resolve()));
  }

  private subscribePattern(pattern: string, handler: Handler): PubSubSubscription {
    if (!PATTERN.test(pattern)) {
      throw new PubSubChannelError(pattern, 'a pattern may use A-Z a-z 0-9 _ . : - and the wildcards * ?');
    }
    if (this.sharded) {
      throw new PubSubChannelError(
        pattern,
        'patterns are not available on Cluster (channels are sharded); subscribe to channels',
      );
    }
    const redisPattern = escapeGlob(this.namespace) + `{${pattern}}`;
    let entry = this.patterns.get(redisPattern);
    if (!entry) {
      const regex = new RegExp(
        `^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`,
      );
      const subscribed = this.subscriber()
        .psubscribe(redisPattern)
        .then(
          () => undefined,
          (err: unknown) => this.logger.warn(`psubscribe ${pattern}: ${describeRedisError(err)}`),
        );
      entry = { pattern, regex, handlers: new Set(), subscribed };
      this.patterns.set(redisPattern, entry);
    }
    const e = entry;
    e.handlers.add(handler);
    return this.subscription(e.subscribed, async () => {
      e.handlers.delete(handler);
      if (e.handlers.size || this.patterns.get(redisPattern) !== e) return;
      this.patterns.delete(redisPattern);
      await this.sub?.punsubscribe(redisPattern).catch(() => undefined);
    });
  }

  private subscription(ready: Promise<void>, stop: () => Promise<void>): PubSubSubscription {
    let done: Promise<void> | undefined;
    return { ready, unsubscribe: () => (done ??= stop()) };
  }

  private async release(entry: ChannelEntry): Promise<void> {
    if (entry.handlers.size || entry.cursors.size || this.channels.get(entry.channel) !== entry) return;
    this.channels.delete(entry.channel);
    const sub = this.sub;
    if (!sub || this.closed) return;
    const redisChannel = this.redisChannel(entry.channel);
    await (this.sharded ? (sub as Cluster).sunsubscribe(redisChannel) : sub.unsubscribe(redisChannel)).catch(
      () => undefined,
    );
  }

  /** One read in flight per (channel, position): readers at the same place share it. */
  private read(channel: string, after: string): Promise<ReadEventsReply> {
    const key = `${channel}\n${after}`;
    let p = this.reads.get(key);
    if (!p) {
      p = this.scripts.read([this.streamKey(channel)], [after, this.config.readBatch]);
      this.reads.set(key, p);
      const clear = () => this.reads.delete(key);
      p.then(clear, clear);
    }
    return p;
  }

  private hold(item: BufferedEvent): PublishReceipt {
    this.buffer.hold(item);
    return { status: 'buffered', id: null };
  }

  private append(item: BufferedEvent): Promise<string> {
    const { maxEvents, maxAge } = this.config.retention;
    return this.scripts.append(
      [this.streamKey(item.channel)],
      [maxEvents, maxAge, this.redisChannel(item.channel), item.json, this.sharded ? 'SPUBLISH' : 'PUBLISH'],
    );
  }

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

  private redisChannel(channel: string): string {
    return `${this.namespace}{${channel}}`;
  }

  private streamKey(channel: string): string {
    return `${this.namespace}{${channel}}:events`;
  }
}

function makeScripts(connection: RedisConnection) {
  return defineScripts(connection, { append: appendEventScript, read: readEventsScript });
}

function toMessage(env: Envelope, id: string, pattern: string | undefined): PubSubMessage<unknown> {
  const message: PubSubMessage<unknown> = { channel: env.c, data: env.d, ts: env.ts };
  if (env.t) message.type = env.t;
  if (id) message.id = id;
  if (pattern) message.pattern = pattern;
  return message;
}

/** The W3C traceparent of an OpenTelemetry span (what `runInSpan` hands out while tracing is on). */
function traceparentOf(span: RedwingSpan): string | undefined {
  const ctx = (
    span as { spanContext?: () => { traceId: string; spanId: string; traceFlags: number } }
  ).spanContext?.();
  if (!ctx || /^0+$/.test(ctx.traceId)) return undefined;
  return `00-${ctx.traceId}-${ctx.spanId}-${(ctx.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

async function closeQuietly(conn: RedisConnection): Promise<void> {
  const ended = new Promise<void>((resolve) => {
    if (conn.status === 'end') resolve();
    else conn.once('end', () => resolve());
  });
  conn.disconnect();
  await withTimeout(ended, 2_000);
}
