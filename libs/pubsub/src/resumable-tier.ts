import type { Logger } from '@nestjs/common';
import {
  defineScripts,
  describeRedisError,
  isRedisUnavailable,
  type ManagedRedisClient,
} from '@redwing/redis';
import type { ResolvedPubSubConfig } from './pubsub.config';
import type { PublishReceipt, PubSubSubscription, ResumableDelivery } from './pubsub.interfaces';
import type { PubSubMetrics } from './pubsub.metrics';
import { redisChannelOf, subscription, type EphemeralTier } from './ephemeral-tier';
import { OfflineBuffer, type BufferedEvent } from './offline-buffer';
import { ResumableCursor, type CursorHost } from './resumable-cursor';
import { appendEventScript } from './scripts/append-event.script';
import { readEventsScript, type ReadEventsReply } from './scripts/read-events.script';

/** Most live events a cursor holds while it catches up; more are dropped and re-read from the stream. */
const MAX_PENDING = 10_000;

/** What the resumable tier needs from the service. */
export interface ResumableTierHost {
  config: ResolvedPubSubConfig;
  client: ManagedRedisClient;
  /** `<prefix>:pubsub:` — the stream of a channel is `<namespace>{<channel>}:events`. */
  namespace: string;
  /** The channel subscriptions that carry the live copies of the events. */
  live: Pick<EphemeralTier, 'join'>;
  metrics: PubSubMetrics;
  logger: Logger;
}

/**
 * The resumable tier: appending events to their channel's bounded stream (through the offline buffer while
 * Redis is unavailable), the `subscribeFrom` cursors with their catch-up reads (one read in flight per
 * channel and position), gap detection and resync, and the catch-up of every cursor after a reconnect.
 */
export class ResumableTier {
  private readonly scripts: ReturnType<typeof makeScripts>;
  private readonly reads = new Map<string, Promise<ReadEventsReply>>();
  private readonly cursors = new Set<ResumableCursor>();
  private readonly buffer: OfflineBuffer;
  private readonly cursorHost: CursorHost;
  private readonly sharded: boolean;

  constructor(private readonly host: ResumableTierHost) {
    const { config, client, metrics, logger } = host;
    this.sharded = client.topology === 'cluster';
    this.scripts = makeScripts(client);
    this.buffer = new OfflineBuffer({
      ...config.offlineBuffer,
      write: (item) => this.append(item),
      isAvailable: () => client.isAvailable(),
      drop: (reason) => metrics.drop(reason),
      warn: (message) => logger.warn(message),
    });
    this.cursorHost = {
      readBatch: config.readBatch,
      maxPending: MAX_PENDING,
      retryDelay: config.offlineBuffer.retryInterval,
      read: (channel, after) => this.read(channel, after),
      delivered: () => metrics.counts.delivered++,
      resynced: () => metrics.counts.resyncs++,
      failed: (what, err) => logger.debug(`${what} failed (retrying): ${describeRedisError(err)}`),
    };
  }

  /** Events waiting in the offline buffer. */
  get buffered(): number {
    return this.buffer.size;
  }

  /** Append an event to its stream, or hold it in the offline buffer while Redis is unavailable. */
  async publish(item: BufferedEvent): Promise<PublishReceipt> {
    if (this.buffer.size > 0 || !this.host.client.isAvailable()) return this.hold(item);
    try {
      return { status: 'written', id: await this.append(item) };
    } catch (err) {
      if (!isRedisUnavailable(err)) throw err;
      return this.hold(item);
    }
  }

  /** A cursor on a (valid) channel after `lastId` (`undefined`: from now on). */
  subscribeFrom<T>(
    channel: string,
    lastId: string | undefined,
    handler: (delivery: ResumableDelivery<T>) => void,
  ): PubSubSubscription {
    const cursor = new ResumableCursor<T>(channel, lastId ?? '$', handler, this.cursorHost);
    const member = this.host.live.join(channel, cursor);
    this.cursors.add(cursor as ResumableCursor);
    const ready = member.subscribed.then(() => cursor.catchUp());
    return subscription(ready, () => {
      cursor.close();
      this.cursors.delete(cursor as ResumableCursor);
      return member.leave();
    });
  }

  /** Write the offline buffer (Redis is back). */
  flush(): void {
    void this.buffer.flush();
  }

  /** The subscriber connection is back: every cursor reads what it missed from its stream. */
  reconnected(): void {
    for (const cursor of this.cursors) {
      this.host.metrics.counts.catchUps++;
      void cursor.catchUp();
    }
  }

  /** Stop the buffer and every cursor; returns how many buffered events were never written. */
  close(): number {
    const unwritten = this.buffer.stop();
    for (const cursor of this.cursors) cursor.close();
    return unwritten;
  }

  // ---------------------------------------------------------------------------------------------

  /** One read in flight per (channel, position): readers at the same place share it. */
  private read(channel: string, after: string): Promise<ReadEventsReply> {
    const key = `${channel}\n${after}`;
    let p = this.reads.get(key);
    if (!p) {
      p = this.scripts.read([this.streamKey(channel)], [after, this.host.config.readBatch]);
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
    const { maxEvents, maxAge } = this.host.config.retention;
    return this.scripts.append(
      [this.streamKey(item.channel)],
      [
        maxEvents,
        maxAge,
        redisChannelOf(this.host.namespace, item.channel),
        item.json,
        this.sharded ? 'SPUBLISH' : 'PUBLISH',
      ],
    );
  }

  private streamKey(channel: string): string {
    return `${redisChannelOf(this.host.namespace, channel)}:events`;
  }
}

function makeScripts(client: ManagedRedisClient) {
  return defineScripts(client.command, { append: appendEventScript, read: readEventsScript });
}
