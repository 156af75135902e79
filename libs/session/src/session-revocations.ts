import type { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { ChannelSubscription, describeRedisError, type ManagedRedisClient } from '@redwing/redis';
import type { SessionRevokedEvent } from './session.interfaces';

type Listener = (event: SessionRevokedEvent) => void;

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
 * to the others' logouts until a restart, so it is logged and sent again until accepted, also after every
 * reconnect (the kit's {@link ChannelSubscription}).
 */
export class SessionRevocations {
  private readonly listeners = new Set<Listener>();
  private readonly origin = randomBytes(8).toString('hex');
  private subscription?: ChannelSubscription;

  constructor(
    private readonly client: ManagedRedisClient,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {}

  /** Subscribe in the background (the subscriber connection queues it until Redis is reachable). */
  start(): void {
    this.subscription ??= new ChannelSubscription(this.client.subscriber(), this.channel, {
      onMessage: (text) => this.onMessage(text),
      onRefused: (why) =>
        this.logger.warn(
          `revocation channel not subscribed: ${why} (logouts on other instances are not heard here until ` +
            'Redis accepts it; sent again with a backoff)',
        ),
      onAccepted: () => this.logger.log('revocation channel subscribed now'),
    });
    void this.subscription.start();
  }

  /** Why Redis refuses the revocation channel's SUBSCRIBE (sent again until accepted), or undefined. */
  refused(): string | undefined {
    return this.subscription?.refused();
  }

  /** Resolves once the channel is subscribed (or subscribing failed). */
  ready(): Promise<void> {
    return this.subscription?.start() ?? Promise.resolve();
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
    await this.subscription?.stop();
  }

  private onMessage(text: string): void {
    let message: RevokedMessage;
    try {
      message = JSON.parse(text) as RevokedMessage;
    } catch {
      return;
    }
    if (message.o === this.origin || typeof message.u !== 'string') return;
    const refs = message.r === 'all' ? 'all' : Array.isArray(message.r) ? message.r.map(String) : undefined;
    if (refs) this.deliver({ userId: message.u, refs });
  }

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
