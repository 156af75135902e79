import { Inject, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
} from '@nestjs/websockets';
import { PubSubService, type PubSubSubscription, type ResumableDelivery } from '@redwing/pubsub';
import { RateLimitService, type RateLimitLimit } from '@redwing/rate-limit';
import { REDWING_METRICS, type MetricsRegistry } from '@redwing/redis';
import { SessionService } from '@redwing/session';
import type { Namespace, Socket } from 'socket.io';
import type { GatewayEnv } from '../config/gateway-env.schema';
import { authorize, identify, LiveHandshakeRefused, type LiveIdentity } from './live-auth';
import { LiveMetrics } from './live.metrics';

/** What the gateway keeps per socket (in `socket.data`). */
interface SocketState {
  identity: LiveIdentity;
  /** Subscribed channels: `room` = shared live delivery; otherwise the socket's own resumed subscription. */
  channels: Map<string, 'room' | PubSubSubscription>;
  /** Messages waiting for their rate-limit decision. */
  inFlight: number;
}

/** One instance-wide live subscription per channel, shared by every socket in its room. */
interface RoomChannel {
  subscription: PubSubSubscription;
}

const ROOM = (channel: string) => `ch:${channel}`;
const LAST_ID = /^\d{1,15}-\d{1,15}$/;
/** Messages of one socket waiting for a rate-limit answer; beyond it they are dropped at once. */
const MAX_IN_FLIGHT = 16;
/** How often every socket's send buffer is checked, ms (private deliveries are also checked per send). */
const SWEEP_INTERVAL = 100;
/** Longest a subscribe waits for Redis to confirm before it is acknowledged anyway, ms. */
const SUBSCRIBE_WAIT = 1_000;

/**
 * The live endpoint (DESIGN §3.5 wire contract): socket.io namespace `/live` on the HTTP port.
 * Client → server `subscribe {channel, lastEventId?}` (ack `{ok}` / `{ok:false, error}`), `unsubscribe
 * {channel}`. Server → client `event {id, channel, type, data, ts}`, `resync-required {channel, reason}`,
 * `degraded` / `recovered`, and `revoked` just before a socket whose session ended is closed.
 */
@WebSocketGateway({ namespace: '/live' })
export class LiveGateway
  implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, OnApplicationShutdown
{
  @WebSocketServer()
  private nsp!: Namespace;

  private readonly logger = new Logger('LiveGateway');
  private readonly rooms = new Map<string, RoomChannel>();
  private readonly byUser = new Map<string, Set<Socket>>();
  private readonly messageLimit: RateLimitLimit;
  private readonly sendBuffer: number;
  private readonly maxChannels: number;
  readonly metrics: LiveMetrics;
  private sweep?: NodeJS.Timeout;
  private offState?: () => void;
  private offRevoked?: () => void;
  private degraded = false;

  constructor(
    private readonly pubsub: PubSubService,
    config: ConfigService<GatewayEnv, true>,
    @Optional() private readonly rateLimit?: RateLimitService,
    @Optional() private readonly sessions?: SessionService,
    @Optional() @Inject(REDWING_METRICS) registry?: MetricsRegistry,
  ) {
    this.messageLimit = {
      name: 'live-message',
      points: config.get('LIVE_MESSAGE_RATE', { infer: true }) ?? 20,
      duration: 1_000,
      algorithm: 'token-bucket',
    };
    this.sendBuffer = config.get('LIVE_SEND_BUFFER', { infer: true }) ?? 1_048_576;
    this.maxChannels = config.get('LIVE_MAX_CHANNELS', { infer: true }) ?? 50;
    this.metrics = new LiveMetrics(registry, () => this.nsp?.sockets.size ?? 0);
  }

  /** Sockets connected to this instance, channels with a shared subscription, and the counters. */
  stats(): { sockets: number; rooms: number } & LiveMetrics['counts'] {
    const counts = this.metrics.counts;
    return {
      sockets: this.nsp?.sockets.size ?? 0,
      rooms: this.rooms.size,
      ...counts,
      dropped: { ...counts.dropped },
    };
  }

  afterInit(nsp: Namespace): void {
    nsp.use((socket, next) => {
      identify(socket.handshake, this.sessions).then(
        (identity) => {
          this.state(socket, identity);
          next();
        },
        (err: unknown) => {
          const reason = err instanceof LiveHandshakeRefused ? err.reason : 'error';
          this.metrics.drop(reason === 'unavailable' ? 'auth-unavailable' : 'unauthorized');
          if (!(err instanceof LiveHandshakeRefused))
            this.logger.warn(`handshake failed: ${(err as Error)?.name}`);
          next(
            Object.assign(new Error(reason === 'unavailable' ? 'unavailable' : 'unauthorized'), {
              data: { reason },
            }),
          );
        },
      );
    });
    this.offState = this.pubsub.onStateChange((state) => {
      if (state === 'degraded' && !this.degraded) {
        this.degraded = true;
        nsp.emit('degraded', { reason: 'redis-unavailable', at: Date.now() });
      } else if (state === 'up' && this.degraded) {
        this.degraded = false;
        nsp.emit('recovered', { at: Date.now() });
      }
    });
    this.offRevoked = this.sessions?.onRevoked(({ userId, refs }) => this.revoke(userId, refs));
    this.sweep = setInterval(() => this.sweepSlowConsumers(), SWEEP_INTERVAL);
    this.sweep.unref();
  }

  handleConnection(socket: Socket): void {
    const s = socket.data as SocketState;
    if (!s?.identity) {
      socket.disconnect(true);
      return;
    }
    this.metrics.connected();
    if (s.identity.userId !== null) {
      let set = this.byUser.get(s.identity.userId);
      if (!set) this.byUser.set(s.identity.userId, (set = new Set()));
      set.add(socket);
    }
    if (this.degraded) socket.emit('degraded', { reason: 'redis-unavailable', at: Date.now() });
    socket.use((packet, next) => this.admit(socket, packet, next));
    socket.on('subscribe', (body: unknown, ack?: unknown) => void this.subscribe(socket, body, replier(ack)));
    socket.on(
      'unsubscribe',
      (body: unknown, ack?: unknown) => void this.unsubscribe(socket, body, replier(ack)),
    );
  }

  handleDisconnect(socket: Socket): void {
    const s = socket.data as SocketState;
    if (!s?.channels) return;
    if (s.identity.userId !== null) {
      const set = this.byUser.get(s.identity.userId);
      set?.delete(socket);
      if (set && !set.size) this.byUser.delete(s.identity.userId);
    }
    for (const [channel, sub] of s.channels) {
      if (sub === 'room') void this.leaveRoom(socket, channel);
      else void sub.unsubscribe();
    }
    s.channels.clear();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweep);
    this.offState?.();
    this.offRevoked?.();
    await Promise.all([...this.rooms.values()].map((r) => r.subscription.unsubscribe()));
    this.rooms.clear();
  }

  // ---------------------------------------------------------------------------------------------

  private state(socket: Socket, identity: LiveIdentity): void {
    const s: SocketState = { identity, channels: new Map(), inFlight: 0 };
    socket.data = s;
  }

  /** Every client message passes the socket's rate limit (through RateLimitService) before its handler. */
  private admit(socket: Socket, packet: unknown[], next: (err?: Error) => void): void {
    this.metrics.message('in');
    const s = socket.data as SocketState;
    const ack = packet[packet.length - 1];
    const refuse = (error: string, retryAfter?: number) => {
      if (typeof ack === 'function') ack({ ok: false, error, ...(retryAfter ? { retryAfter } : {}) });
    };
    if (!this.rateLimit) return next();
    if (s.inFlight >= MAX_IN_FLIGHT) {
      this.metrics.drop('rate-limited');
      return refuse('rate-limited');
    }
    s.inFlight++;
    this.rateLimit.consume(`socket:${socket.id}`, { limits: this.messageLimit }).then(
      (decision) => {
        s.inFlight--;
        if (decision.allowed || !socket.connected) return next();
        this.metrics.drop('rate-limited');
        refuse('rate-limited', decision.retryAfter);
      },
      () => {
        s.inFlight--;
        next();
      },
    );
  }

  private async subscribe(socket: Socket, body: unknown, reply: (r: object) => void): Promise<void> {
    const s = socket.data as SocketState;
    const channel = (body as { channel?: unknown })?.channel;
    const lastEventId = (body as { lastEventId?: unknown })?.lastEventId;
    if (
      typeof channel !== 'string' ||
      (lastEventId !== undefined && (typeof lastEventId !== 'string' || !LAST_ID.test(lastEventId)))
    ) {
      return reply({ ok: false, error: 'invalid-request' });
    }
    const allowed = authorize(channel, s.identity);
    if (allowed !== 'ok') return reply({ ok: false, error: allowed });
    if (s.channels.has(channel)) return reply({ ok: true });
    if (s.channels.size >= this.maxChannels) return reply({ ok: false, error: 'too-many-channels' });
    let ready: Promise<void>;
    if (lastEventId === undefined) {
      s.channels.set(channel, 'room');
      await socket.join(ROOM(channel));
      ready = this.roomChannel(channel).subscription.ready;
    } else {
      const sub = this.pubsub.subscribeFrom(channel, lastEventId, (d) => this.deliverPrivate(socket, d));
      s.channels.set(channel, sub);
      ready = sub.ready;
    }
    await settleWithin(ready, SUBSCRIBE_WAIT);
    reply({ ok: true });
  }

  private async unsubscribe(socket: Socket, body: unknown, reply: (r: object) => void): Promise<void> {
    const s = socket.data as SocketState;
    const channel = (body as { channel?: unknown })?.channel;
    if (typeof channel !== 'string') return reply({ ok: false, error: 'invalid-request' });
    const sub = s.channels.get(channel);
    s.channels.delete(channel);
    if (sub === 'room') await this.leaveRoom(socket, channel);
    else await sub?.unsubscribe();
    reply({ ok: true });
  }

  /** The instance's shared subscription of a channel: events go to the room, encoded once. */
  private roomChannel(channel: string): RoomChannel {
    let room = this.rooms.get(channel);
    if (!room) {
      const subscription = this.pubsub.subscribeFrom(channel, undefined, (d) => {
        const members = this.nsp.adapter.rooms.get(ROOM(channel))?.size ?? 0;
        if (d.kind === 'event') {
          this.nsp.to(ROOM(channel)).emit('event', d.event);
          this.metrics.message('out', members);
        } else {
          this.nsp.to(ROOM(channel)).emit('resync-required', { channel: d.channel, reason: d.reason });
        }
      });
      room = { subscription };
      this.rooms.set(channel, room);
    }
    return room;
  }

  private async leaveRoom(socket: Socket, channel: string): Promise<void> {
    await socket.leave(ROOM(channel));
    const room = this.rooms.get(channel);
    if (room && !(this.nsp.adapter.rooms.get(ROOM(channel))?.size ?? 0)) {
      this.rooms.delete(channel);
      await room.subscription.unsubscribe();
    }
  }

  private deliverPrivate(socket: Socket, d: ResumableDelivery): void {
    if (!socket.connected || this.dropIfSlow(socket)) return;
    if (d.kind === 'event') {
      socket.emit('event', d.event);
      this.metrics.message('out');
    } else socket.emit('resync-required', { channel: d.channel, reason: d.reason });
  }

  private sweepSlowConsumers(): void {
    for (const socket of this.nsp?.sockets.values() ?? []) this.dropIfSlow(socket);
  }

  /** Disconnects a socket whose queued output is over `LIVE_SEND_BUFFER` bytes; true when it did. */
  private dropIfSlow(socket: Socket): boolean {
    if (queuedBytes(socket) <= this.sendBuffer) return false;
    this.metrics.drop('slow-consumer');
    const conn = socket.conn as unknown as EngineConn;
    // Nothing more is queued for it, and what is queued is let go: a stalled peer cannot hold memory.
    conn.writeBuffer.length = 0;
    socket.disconnect(true);
    conn.transport?.socket?.terminate?.();
    return true;
  }

  /** "Log out everywhere" (or one session ended) on any instance: close the sockets of those sessions. */
  private revoke(userId: string, refs: string[] | 'all'): void {
    for (const socket of this.byUser.get(userId) ?? []) {
      const ref = (socket.data as SocketState).identity.sessionRef;
      if (refs !== 'all' && (ref === null || !refs.includes(ref))) continue;
      this.metrics.drop('session-revoked');
      socket.emit('revoked', { reason: 'session-ended' });
      socket.disconnect(true);
    }
  }
}

/** The parts of engine.io's socket the send-buffer check reads. */
interface EngineConn {
  writeBuffer: Array<{ data?: unknown }>;
  transport?: { socket?: { bufferedAmount?: number; terminate?: () => void } };
}

/**
 * Bytes queued for a socket: what the WebSocket has not handed to TCP, plus engine.io's write buffer estimated
 * as its length times the size of its first packet (O(1): this runs for every socket every 100 ms).
 */
function queuedBytes(socket: Socket): number {
  const conn = socket.conn as unknown as EngineConn;
  const ws = conn.transport?.socket?.bufferedAmount ?? 0;
  const queued = conn.writeBuffer.length;
  if (queued === 0) return ws;
  const first = conn.writeBuffer[0]?.data;
  const size = typeof first === 'string' || first instanceof Buffer ? first.length : 64;
  return ws + queued * Math.max(size, 16);
}

function replier(ack: unknown): (reply: object) => void {
  return typeof ack === 'function' ? (ack as (reply: object) => void) : () => undefined;
}

async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
