import type { Logger } from '@nestjs/common';
import { Cluster } from 'ioredis';
import {
  BackoffTimer,
  describeRedisError,
  isRedisUnavailable,
  type ManagedRedisClient,
  type RedisConnection,
} from '@redwing/redis';
import { PubSubChannelError } from './pubsub.errors';
import type { PubSubMessage, PubSubState, PubSubSubscription } from './pubsub.interfaces';
import type { PubSubMetrics } from './pubsub.metrics';
import type { Envelope } from './resumable-cursor';
import { inDeliverSpan } from './tracing';

const PATTERN = /^[A-Za-z0-9_.:*?-]{1,200}$/;
/** ms a closing sharded subscriber connection gets before ioredis destroys its socket (its default: 2,000). */
const SUBSCRIBER_DISCONNECT_TIMEOUT = 100;

/** A `subscribe` handler. */
export type Handler = (message: PubSubMessage<unknown>) => void;

/** A reader of a channel's live resumable events (a `subscribeFrom` cursor). */
export interface LiveReader {
  onLive(id: string, prev: string, env: Envelope): void;
}

/** A reader's place on a channel's subscription: resolved once subscribed; `leave` drops it. */
export interface ChannelMembership {
  subscribed: Promise<void>;
  leave(): Promise<void>;
}

/** What the ephemeral tier needs from the service. */
export interface EphemeralTierHost {
  client: ManagedRedisClient;
  /** `<prefix>:pubsub:` — every Redis channel of the lib starts with it. */
  namespace: string;
  /** This instance's id in every envelope. */
  origin: string;
  metrics: PubSubMetrics;
  logger: Logger;
  /** The subscriber connection is subscribed again after a reconnect (resumable readers catch up). */
  reconnected(): void;
}

/** What a channel and a pattern subscription share: its first SUBSCRIBE, and why Redis refused the last one. */
interface Subscribed {
  subscribed: Promise<void>;
  /** Set while Redis refuses this subscription (NOPERM from an ACL, say): it is sent again until accepted. */
  refused?: string;
}

interface ChannelEntry extends Subscribed {
  channel: string;
  handlers: Set<Handler>;
  readers: Set<LiveReader>;
}

interface PatternEntry extends Subscribed {
  pattern: string;
  regex: RegExp;
  handlers: Set<Handler>;
}

/** The Redis channel of a lib channel: `<prefix>:pubsub:{<channel>}` (the stream key shares the hash tag). */
export function redisChannelOf(namespace: string, channel: string): string {
  return `${namespace}{${channel}}`;
}

/** A subscription whose `unsubscribe` runs `stop` once. */
export function subscription(ready: Promise<void>, stop: () => Promise<void>): PubSubSubscription {
  let done: Promise<void> | undefined;
  return { ready, unsubscribe: () => (done ??= stop()) };
}

/**
 * The ephemeral tier: the one subscriber connection per instance (sharded `SSUBSCRIBE` connections on
 * Cluster), the channel and pattern subscriptions with their handlers, delivery of every message to them
 * (local publishes at once, also while Redis is down), and the `up`/`degraded` state, which follows the
 * subscriber connection; ioredis re-subscribes after every reconnect.
 */
export class EphemeralTier {
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly patterns = new Map<string, PatternEntry>();
  private readonly stateListeners = new Set<(state: PubSubState) => void>();
  private readonly client: ManagedRedisClient;
  private readonly sharded: boolean;
  private sub?: RedisConnection;
  private state: PubSubState = 'degraded';
  private wasUp = false;
  private closed = false;
  /** Sends the refused subscriptions again: after 1 s, doubling to 30 s (the timer's defaults). */
  private readonly retry = new BackoffTimer(() => this.resend((e) => e.refused !== undefined));

  constructor(private readonly host: EphemeralTierHost) {
    this.client = host.client;
    this.sharded = host.client.topology === 'cluster';
  }

  /** Open the subscriber connection (never waits for Redis). */
  start(): void {
    const sub = this.subscriber();
    if (sub.status === 'ready') void this.onSubscriberReady();
  }

  getState(): PubSubState {
    return this.state;
  }

  /** Channels and patterns whose SUBSCRIBE Redis refused; each is sent again until it is accepted. */
  refused(): string[] {
    return [...this.channels.values(), ...this.patterns.values()]
      .filter((e) => e.refused !== undefined)
      .map((e) => ('channel' in e ? e.channel : e.pattern));
  }

  onStateChange(listener: (state: PubSubState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Deliver to this instance's handlers at once and send to Redis; false when Redis is unavailable. */
  publish(channel: string, env: Envelope, json: string): Promise<boolean> {
    queueMicrotask(() => this.dispatch(channel, '', '', env));
    if (!this.client.isAvailable()) {
      this.host.metrics.drop('redis-unavailable');
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
        this.host.metrics.drop('redis-unavailable');
        return false;
      },
    );
  }

  /** Add a handler to a (valid) channel. */
  subscribe(channel: string, handler: Handler): PubSubSubscription {
    const entry = this.channelEntry(channel);
    entry.handlers.add(handler);
    return subscription(entry.subscribed, () => {
      entry.handlers.delete(handler);
      return this.release(entry);
    });
  }

  /** Add a live reader to a (valid) channel, subscribing it if it is new. */
  join(channel: string, reader: LiveReader): ChannelMembership {
    const entry = this.channelEntry(channel);
    entry.readers.add(reader);
    return {
      subscribed: entry.subscribed,
      leave: () => {
        entry.readers.delete(reader);
        return this.release(entry);
      },
    };
  }

  /** Add a handler to a pattern (`*`, `?`; standalone only). */
  subscribePattern(pattern: string, handler: Handler): PubSubSubscription {
    if (!PATTERN.test(pattern)) {
      throw new PubSubChannelError(pattern, 'a pattern may use A-Z a-z 0-9 _ . : - and the wildcards * ?');
    }
    if (this.sharded) {
      throw new PubSubChannelError(
        pattern,
        'patterns are not available on Cluster (channels are sharded); subscribe to channels',
      );
    }
    const redisPattern = escapeGlob(this.host.namespace) + `{${pattern}}`;
    let entry = this.patterns.get(redisPattern);
    if (!entry) {
      const regex = new RegExp(
        `^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`,
      );
      entry = { pattern, regex, handlers: new Set(), subscribed: Promise.resolve() };
      entry.subscribed = this.sendPattern(redisPattern, entry);
      this.patterns.set(redisPattern, entry);
    }
    const e = entry;
    e.handlers.add(handler);
    return subscription(e.subscribed, async () => {
      e.handlers.delete(handler);
      if (e.handlers.size || this.patterns.get(redisPattern) !== e) return;
      this.patterns.delete(redisPattern);
      await this.sub?.punsubscribe(redisPattern).catch(() => undefined);
    });
  }

  /** Stop listening and leave our channels (close the sharded connections, which are ours alone). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.retry.stop();
    const sub = this.sub;
    if (!sub) return;
    sub.removeListener('message', this.onMessage);
    sub.removeListener('pmessage', this.onPatternMessage);
    sub.removeListener('smessage', this.onMessage);
    sub.removeListener('ready', this.onReadyEvent);
    sub.removeListener('close', this.onDown);
    sub.removeListener('-subscriber', this.onDown);
    sub.removeListener('+subscriber', this.onReadyEvent);
    sub.removeListener('subscribersReady', this.onReadyEvent);
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
        // disconnectTimeout: ioredis arms a timer of this length on every disconnect() to destroy a stream
        // that did not close, and ioredis's subscriber group calls disconnect() on a sharded subscriber it
        // replaces even when that connection is already closed (killed, its node gone), where nothing
        // clears the timer: it then holds the process open for its full length after a clean shutdown.
        // Subscriber connections have nothing to flush, so a short grace is enough.
        redisOptions: {
          ...cluster.options.redisOptions,
          commandTimeout: undefined,
          // An SSUBSCRIBE in flight when a node's socket drops is re-sent rather than dropped unsettled.
          autoResendUnfulfilledCommands: true,
          disconnectTimeout: SUBSCRIBER_DISCONNECT_TIMEOUT,
        },
      });
      sub.on('error', () => undefined);
      sub.on('smessage', this.onMessage);
      sub.on('-subscriber', this.onDown);
      // `+subscriber` as each sharded subscriber is (re)created; ioredis 6 adds `subscribersReady` once they
      // are connected and their SSUBSCRIBEs re-sent (a catch-up started earlier then reads once more).
      sub.on('+subscriber', this.onReadyEvent);
      sub.on('subscribersReady', this.onReadyEvent);
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
    // ioredis re-sends only what was accepted, and a re-send Redis refuses (an ACL changed while the
    // connection was away) is dropped from its list without a word: after a reconnect send ours again
    // (SUBSCRIBE is idempotent), so a refusal is ours to see and retry. The PING below then orders after them.
    if (this.wasUp && !this.sharded) this.resend(() => true);
    else this.resend((e) => e.refused !== undefined);
    if (!this.sharded)
      await withTimeout(
        (sub as { ping(): Promise<unknown> }).ping().catch(() => undefined),
        2_000,
      );
    // Sharded: subscriber events while the cluster itself is still connecting are part of its start.
    if (this.closed || sub.status !== 'ready') return;
    const reconnect = this.wasUp;
    this.wasUp = true;
    // One reconnect per outage (a Cluster reports each sharded subscriber it recreates); every signal
    // still makes the readers catch up (a catch-up already running reads once more).
    if (reconnect && this.state !== 'up') this.host.metrics.counts.reconnects++;
    if (this.state !== 'up') this.setState('up');
    if (reconnect) this.host.reconnected();
  }

  private readonly onDown = (): void => {
    if (!this.closed && this.state !== 'degraded') this.setState('degraded');
  };

  private setState(state: PubSubState): void {
    this.state = state;
    const { logger } = this.host;
    if (state === 'degraded') logger.warn('subscriber connection lost; delivering local events only');
    else if (this.host.metrics.counts.reconnects > 0) logger.log('subscriber connection back; re-subscribed');
    for (const listener of this.stateListeners) {
      try {
        listener(state);
      } catch (err) {
        logger.warn(`a state listener threw: ${(err as Error)?.message}`);
      }
    }
  }

  private readonly onMessage = (redisChannel: string, message: string): void => {
    if (!redisChannel.startsWith(this.host.namespace)) return;
    this.receive(message, undefined);
  };

  private readonly onPatternMessage = (pattern: string, redisChannel: string, message: string): void => {
    if (!redisChannel.startsWith(this.host.namespace) || !this.patterns.has(pattern)) return;
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
    if (!id && env.o === this.host.origin) return;
    const prev = message.slice(a + 1, b);
    if (pattern) this.dispatchPattern(pattern, id, env);
    else this.dispatch(env.c, id, prev, env);
  }

  /** Deliver one message to this instance's handlers of its channel (and matching patterns for local ones). */
  private dispatch(channel: string, id: string, prev: string, env: Envelope): void {
    const entry = this.channels.get(channel);
    const fromRedis = id !== '' || env.o !== this.host.origin;
    if (!entry && (fromRedis || this.patterns.size === 0)) return;
    this.host.metrics.observeLatency(env.ts);
    const run = () => {
      if (entry) {
        const message = toMessage(env, id, undefined);
        for (const h of entry.handlers) this.call(h, message);
        if (id) for (const reader of entry.readers) reader.onLive(id, prev, env);
      }
      // Local publishes never come back from Redis, so local pattern handlers are matched here.
      if (!fromRedis) {
        for (const p of this.patterns.values()) if (p.regex.test(channel)) this.runPattern(p, id, env);
      }
    };
    // One span per message and instance, linked to the publish span (see tracing.ts); live readers that
    // deliver at once do so inside it.
    inDeliverSpan(env, id, 'live', run);
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
    this.host.metrics.counts.delivered++;
    try {
      handler(message);
    } catch (err) {
      this.host.metrics.drop('handler-error');
      this.host.logger.warn(`a subscribe handler of ${message.channel} threw: ${(err as Error)?.message}`);
    }
  }

  private channelEntry(channel: string): ChannelEntry {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { channel, handlers: new Set(), readers: new Set(), subscribed: Promise.resolve() };
      entry.subscribed = this.sendChannel(entry);
      this.channels.set(channel, entry);
    }
    return entry;
  }

  /** SUBSCRIBE (SSUBSCRIBE on Cluster) one channel; never rejects (a refusal is retried, see `settle`). */
  private sendChannel(entry: ChannelEntry): Promise<void> {
    const sub = this.subscriber();
    const redisChannel = this.redisChannel(entry.channel);
    const sent = this.sharded
      ? whenReady(sub).then(() => (sub as Cluster).ssubscribe(redisChannel))
      : sub.subscribe(redisChannel);
    return this.settle(sent, entry, `subscribe ${entry.channel}`);
  }

  private sendPattern(redisPattern: string, entry: PatternEntry): Promise<void> {
    return this.settle(this.subscriber().psubscribe(redisPattern), entry, `psubscribe ${entry.pattern}`);
  }

  /**
   * The outcome of one SUBSCRIBE/PSUBSCRIBE. Refused (NOPERM, say): logged when the reason is new, kept in
   * `refused()` and sent again with a backoff, so fixing the ACL needs no restart; accepted after a
   * refusal: logged. Never rejects, so a subscription's `ready` cannot become an unhandled rejection.
   */
  private settle(sent: Promise<unknown>, entry: ChannelEntry | PatternEntry, what: string): Promise<void> {
    return sent.then(
      () => {
        if (entry.refused === undefined) return;
        entry.refused = undefined;
        this.host.logger.log(`${what}: accepted now`);
        if (this.refused().length === 0) this.retry.reset();
      },
      (err: unknown) => {
        if (this.closed) return;
        const why = describeRedisError(err);
        if (entry.refused !== why) {
          this.host.logger.warn(`${what}: ${why} (sent again until Redis accepts it; see stats().refused)`);
        }
        entry.refused = why;
        this.retry.schedule();
      },
    );
  }

  /** Send the subscriptions `which` selects again (those still wanted). */
  private resend(which: (entry: ChannelEntry | PatternEntry) => boolean): void {
    for (const entry of this.channels.values()) if (which(entry)) void this.sendChannel(entry);
    for (const [redisPattern, entry] of this.patterns) {
      if (which(entry)) void this.sendPattern(redisPattern, entry);
    }
  }

  private async release(entry: ChannelEntry): Promise<void> {
    if (entry.handlers.size || entry.readers.size || this.channels.get(entry.channel) !== entry) return;
    this.channels.delete(entry.channel);
    const sub = this.sub;
    if (!sub || this.closed) return;
    const redisChannel = this.redisChannel(entry.channel);
    await (this.sharded ? (sub as Cluster).sunsubscribe(redisChannel) : sub.unsubscribe(redisChannel)).catch(
      () => undefined,
    );
  }

  private redisChannel(channel: string): string {
    return redisChannelOf(this.host.namespace, channel);
  }
}

/**
 * On Cluster, SSUBSCRIBE only once the sharded subscribers exist: one sent from the offline queue while the
 * cluster connects lands on a connection whose messages are not forwarded.
 */
function whenReady(sub: RedisConnection): Promise<void> {
  if (sub.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => sub.once('ready', () => resolve()));
}

function toMessage(env: Envelope, id: string, pattern: string | undefined): PubSubMessage<unknown> {
  const message: PubSubMessage<unknown> = { channel: env.c, data: env.d, ts: env.ts };
  if (env.t) message.type = env.t;
  if (id) message.id = id;
  if (pattern) message.pattern = pattern;
  return message;
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
