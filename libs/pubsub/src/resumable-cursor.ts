import type { ReadEventsReply } from './scripts/read-events.script';
import type { ResumableDelivery, ResumableEvent, ResyncReason } from './pubsub.interfaces';
import { inDeliverSpan } from './tracing';

/** The event envelope as published on Redis (JSON). */
export interface Envelope {
  /** Origin instance. */
  o: string;
  /** Channel (unprefixed). */
  c: string;
  /** Event type (resumable tier). */
  t?: string;
  /** Payload. */
  d: unknown;
  /** Publish time, epoch ms. */
  ts: number;
  /** W3C traceparent of the publish span, when tracing was on. */
  tp?: string;
}

/** What a cursor needs from the service. */
export interface CursorHost {
  readonly readBatch: number;
  /** Most live events held while a cursor catches up; more are dropped and re-read from the stream. */
  readonly maxPending: number;
  /** Wait before a failed catch-up is tried again (Redis unavailable), ms. */
  readonly retryDelay: number;
  read(channel: string, after: string): Promise<ReadEventsReply>;
  delivered(): void;
  resynced(reason: ResyncReason): void;
  failed(what: string, err: unknown): void;
}

interface Live {
  id: string;
  prev: string;
  env: Envelope;
}

const RESYNC_REASONS: Record<number, ResyncReason> = { 1: 'expired', 2: 'trimmed', 3: 'unknown-id' };

/** Compare two stream ids (`<ms>-<seq>`); negative when `a` is older. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  if (da !== db) return da - db; // no leading zeros: a longer ms part is a later time
  const x = a.slice(0, da);
  const y = b.slice(0, db);
  if (x !== y) return x < y ? -1 : 1;
  return Number(a.slice(da + 1)) - Number(b.slice(db + 1));
}

/**
 * One `subscribeFrom` reader: delivers a channel's events after its cursor exactly once and in order, from
 * the stream while it catches up and from pub/sub once it is level. A live event whose predecessor is not
 * the cursor means something was missed (a reconnect, a race with the subscription), and sends it back to
 * the stream; an unreadable gap becomes a `resync-required` delivery.
 */
export class ResumableCursor<T = unknown> {
  private cursor: string | null = null;
  private catching = false;
  private running?: Promise<void>;
  private again = false;
  private pending: Live[] = [];
  private closed = false;
  private retry?: NodeJS.Timeout;

  constructor(
    readonly channel: string,
    private readonly from: string,
    private readonly handler: (delivery: ResumableDelivery<T>) => void,
    private readonly host: CursorHost,
  ) {}

  /** The id of the last event delivered (or where delivery starts), once known. */
  get position(): string | null {
    return this.cursor;
  }

  /** Stop delivering. */
  close(): void {
    this.closed = true;
    this.pending = [];
    clearTimeout(this.retry);
  }

  /** A live event from pub/sub (called inside its `pubsub.deliver` span). */
  onLive(id: string, prev: string, env: Envelope): void {
    this.offer(id, prev, env, true);
  }

  /**
   * Read from the stream until level with it, then deliver what arrived live meanwhile. Called at start and
   * after every re-subscribe; a call while one runs makes that one read once more and returns it, so what
   * waits on it (`subscribeFrom`'s `ready`) waits until the position is known — a start (`$`) position read
   * after `ready` would skip events published in between.
   */
  catchUp(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    return (this.running = this.runCatchUp());
  }

  private async runCatchUp(): Promise<void> {
    this.catching = true;
    let ok = false;
    try {
      do {
        this.again = false;
        await this.readToEnd();
      } while (this.again && !this.closed);
      ok = true;
    } catch (err) {
      this.host.failed(`catch-up of ${this.channel}`, err);
      // Live events keep being held meanwhile; the next attempt reads them from the stream.
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.catchUp(), this.host.retryDelay);
      this.retry.unref();
    } finally {
      // Before the drain: a gap it finds starts a new catch-up rather than joining this finished one.
      this.catching = false;
      this.running = undefined;
    }
    if (ok && !this.closed) this.drain();
  }

  private async readToEnd(): Promise<void> {
    for (;;) {
      const after = this.cursor ?? this.from;
      const [status, entries, newest] = await this.host.read(this.channel, after);
      if (this.closed) return;
      if (status !== 0) {
        this.resync(RESYNC_REASONS[status] ?? 'unknown-id', newest);
        return;
      }
      if (after === '$') {
        this.cursor = newest;
        return;
      }
      this.cursor ??= after;
      for (const [id, fields] of entries) {
        if (this.closed) return;
        if (compareIds(id, this.cursor) > 0) this.deliver(id, JSON.parse(fields[1]) as Envelope, 'catch-up');
      }
      if (entries.length < this.host.readBatch) return;
    }
  }

  /** A live event, now (`inSpan`: from `onLive`) or held until a catch-up ended. */
  private offer(id: string, prev: string, env: Envelope, inSpan: boolean): void {
    if (this.closed) return;
    if (this.catching || this.cursor === null) {
      this.hold({ id, prev, env });
      return;
    }
    if (compareIds(id, this.cursor) <= 0) return;
    if (prev !== this.cursor && compareIds(prev, this.cursor) > 0) {
      this.hold({ id, prev, env });
      void this.catchUp();
      return;
    }
    this.deliver(id, env, inSpan ? 'in-span' : 'live');
  }

  private hold(live: Live): void {
    this.pending.push(live);
    if (this.pending.length > this.host.maxPending) {
      // Everything held is in the stream too: drop it and read it from there.
      this.pending = [];
      this.again = true;
    }
  }

  private drain(): void {
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) this.offer(p.id, p.prev, p.env, false);
  }

  private resync(reason: ResyncReason, newest: string): void {
    this.cursor = newest;
    this.host.resynced(reason);
    this.call({ kind: 'resync-required', channel: this.channel, reason, resumeAfter: newest });
  }

  /**
   * Delivers an event to the handler; `how` says where it came from: `in-span` (live, already inside the
   * message's `pubsub.deliver` span), `live` (held while catching up), `catch-up` (read from the stream).
   * The last two get a `pubsub.deliver` span of their own, linked to the publish.
   */
  private deliver(id: string, env: Envelope, how: 'in-span' | 'live' | 'catch-up'): void {
    if (how === 'in-span' || typeof env.tp !== 'string') this.deliverNow(id, env);
    else inDeliverSpan(env, id, how, () => this.deliverNow(id, env));
  }

  private deliverNow(id: string, env: Envelope): void {
    this.cursor = id;
    const event: ResumableEvent<T> = {
      id,
      channel: this.channel,
      type: env.t ?? 'message',
      data: env.d as T,
      ts: env.ts,
    };
    this.host.delivered();
    this.call({ kind: 'event', event });
  }

  private call(delivery: ResumableDelivery<T>): void {
    try {
      this.handler(delivery);
    } catch (err) {
      this.host.failed(`a subscribeFrom handler of ${this.channel}`, err);
    }
  }
}
