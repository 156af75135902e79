import type { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { describeRedisError, type ManagedRedisClient, type RedisConnection } from '@redwing/redis';
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
 * connection (ioredis re-subscribes after reconnects). Listeners on the instance that destroyed them are
 * called at once; its own echo is ignored.
 */
export class SessionRevocations {
  private readonly listeners = new Set<Listener>();
  private readonly origin = randomBytes(8).toString('hex');
  private sub?: RedisConnection;
  private subscribed?: Promise<void>;

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
    this.subscribed = sub.subscribe(this.channel).then(
      () => undefined,
      (err: unknown) => this.logger.warn(`revocation channel not subscribed: ${describeRedisError(err)}`),
    );
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
    this.listeners.clear();
    const sub = this.sub;
    if (!sub) return;
    sub.off('message', this.onMessage);
    if (sub.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        sub.unsubscribe(this.channel).catch(() => undefined),
        new Promise((r) => (timer = setTimeout(r, UNSUBSCRIBE_TIMEOUT))),
      ]);
      clearTimeout(timer);
    }
  }

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
