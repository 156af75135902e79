import type { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import {
  BackoffTimer,
  describeRedisError,
  type ManagedRedisClient,
  type RedisConnection,
} from '@redwing/redis';
import type { SessionRevokedEvent } from './session.interfaces';

type Listener = (event: SessionRevokedEvent) => void;

/** Longest wait for UNSUBSCRIBE at shutdown, ms. */
const UNSUBSCRIBE_TIMEOUT = 1_000;

/** Wire format: origin instance, user id, refs or 'all'. Never a session id. */
interface RevokedMessage {
  o: string;
  u: string;
  r: string[] | 'all';
}

/**
 * Tells every instance that sessions were destroyed, over Redis pub/sub on the client's shared subscriber
 * connection. Listeners on the instance that destroyed them are called at once; its own echo is ignored.
 *
 * A SUBSCRIBE Redis refuses (NOPERM: Redis 7 gives new ACL users no channels) would leave this instance deaf
 * to the others' logouts until a restart, so it is logged and sent again until accepted; and because ioredis
 * drops a re-subscribe Redis refuses after a reconnect without a word, the channel is subscribed again on
 * every `ready` (SUBSCRIBE is idempotent), which makes such a refusal ours to see and retry.
 */
export class SessionRevocations {
  private readonly listeners = new Set<Listener>();
  private readonly origin = randomBytes(8).toString('hex');
  private sub?: RedisConnection;
  private subscribed?: Promise<void>;
  /** Why Redis refused the last SUBSCRIBE, while it stays refused. */
  private refusedWhy?: string;
  /** Sends a refused SUBSCRIBE again: after 1 s, doubling to 30 s (the timer's defaults). */
  private readonly retry = new BackoffTimer(() => {
    if (this.sub && this.refusedWhy !== undefined) void this.send(this.sub);
  });
  private stopped = false;

  constructor(
    private readonly client: ManagedRedisClient,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {}

  /** Subscribe in the background (the subscriber connection queues it until Redis is reachable). */
  start(): void {
    const sub = this.client.subscriber();
    this.sub = sub;
    sub.on('message', this.onMessage);
    sub.on('ready', this.onReady);
    this.subscribed = this.send(sub);
  }

  /** Why Redis refuses the revocation channel's SUBSCRIBE (sent again until accepted), or undefined. */
  refused(): string | undefined {
    return this.refusedWhy;
  }

  /** Resolves once the channel is subscribed (or subscribing failed). */
  ready(): Promise<void> {
    return this.subscribed ?? Promise.resolve();
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Call local listeners now and publish to the other instances (a failed publish is logged, not thrown). */
  async emit(event: SessionRevokedEvent): Promise<void> {
    this.deliver(event);
    const message: RevokedMessage = { o: this.origin, u: event.userId, r: event.refs };
    try {
      await this.client.command.publish(this.channel, JSON.stringify(message));
    } catch (err) {
      this.logger.warn(
        `revocation of ${event.refs === 'all' ? 'all sessions of a user' : `${event.refs.length} session(s)`} ` +
          `not published to other instances: ${describeRedisError(err)}`,
      );
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.retry.stop();
    this.listeners.clear();
    const sub = this.sub;
    if (!sub) return;
    sub.off('message', this.onMessage);
    sub.off('ready', this.onReady);
    if (sub.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        sub.unsubscribe(this.channel).catch(() => undefined),
        new Promise((r) => (timer = setTimeout(r, UNSUBSCRIBE_TIMEOUT))),
      ]);
      clearTimeout(timer);
    }
  }

  /**
   * One SUBSCRIBE. Never rejects: refused, it is logged when the reason is new and sent again with a backoff
   * (fixing the ACL needs no restart); accepted after a refusal, that is logged too.
   */
  private send(sub: RedisConnection): Promise<void> {
    return sub.subscribe(this.channel).then(
      () => {
        if (this.refusedWhy === undefined) return;
        this.refusedWhy = undefined;
        this.retry.reset();
        this.logger.log('revocation channel subscribed now');
      },
      (err: unknown) => {
        if (this.stopped) return;
        const why = describeRedisError(err);
        if (why !== this.refusedWhy) {
          this.logger.warn(
            `revocation channel not subscribed: ${why} (logouts on other instances are not heard here until ` +
              'Redis accepts it; sent again with a backoff)',
          );
        }
        this.refusedWhy = why;
        this.retry.schedule();
      },
    );
  }

  /** (Re)connected: subscribe again, so a re-subscribe Redis refused is seen (ioredis drops it silently). */
  private readonly onReady = (): void => {
    if (!this.stopped && this.sub) void this.send(this.sub);
  };

  private readonly onMessage = (channel: string, text: string): void => {
    if (channel !== this.channel) return;
    let message: RevokedMessage;
    try {
      message = JSON.parse(text) as RevokedMessage;
    } catch {
      return;
    }
    if (message.o === this.origin || typeof message.u !== 'string') return;
    const refs = message.r === 'all' ? 'all' : Array.isArray(message.r) ? message.r.map(String) : undefined;
    if (refs) this.deliver({ userId: message.u, refs });
  };

  private deliver(event: SessionRevokedEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error(`onRevoked listener threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}
