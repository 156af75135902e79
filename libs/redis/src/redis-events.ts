import type { BreakerState, RedisClientHealth, RedisConnectionState } from './redis.interfaces';

/** How a command ended, as reported on the `command` event. */
export type CommandOutcome = 'ok' | 'reply-error' | 'timeout' | 'unavailable' | 'error';

export interface RedisEventMap {
  /** The connection state of a client changed. */
  state: { client: string; previous: RedisConnectionState; current: RedisConnectionState; error?: string };
  /** The client's circuit breaker changed state. */
  breaker: { client: string; previous: BreakerState; current: BreakerState; reason: string };
  /** The health status (`up`/`degraded`) of a client changed. */
  health: { client: string; health: RedisClientHealth };
  /**
   * One command finished. Emitted only while someone listens (it is on the hot path); `durationMs` is
   * wall time from send to settle. Breaker rejections are reported with outcome `unavailable`.
   */
  command: { client: string; command: string; durationMs: number; outcome: CommandOutcome };
  /** A lib served from its in-memory fallback because Redis was unavailable. */
  fallback: { client: string; lib: string; operation: string; reason: string };
  /** A security-relevant condition (plain-text connection to a remote host, TLS verification off). */
  audit: { client: string; message: string };
}

export type RedisEventName = keyof RedisEventMap;

/**
 * Hook for tracing each command (the metrics lib installs an OpenTelemetry one). `start` runs synchronously
 * when the command is sent, in the caller's async context, so a span opened there has the request's span
 * as parent; `end` runs when the command settles.
 */
export interface RedisCommandTracer {
  start(client: string, command: string): unknown;
  end(handle: unknown, outcome: CommandOutcome, error?: Error): void;
}

/**
 * The one event surface of every Redis client: state changes, breaker transitions, health, command
 * latency and outcomes, fallback activations. The metrics lib and the other libs consume it.
 *
 * Listeners live in copy-on-write arrays (no EventEmitter): `command` fires once per Redis command, so
 * emitting is one array walk, and a throwing listener neither breaks the command nor starves the others.
 */
export class RedisEvents {
  private readonly listeners = new Map<RedisEventName, ReadonlyArray<(payload: never) => void>>();
  /** True while at least one `command` listener is attached; checked before building the event. */
  commandObserved = false;
  /** The installed command tracer, if any (see `setTracer`). */
  tracer: RedisCommandTracer | null = null;

  /** Install (or with `null` remove) the tracer every client of this manager reports commands to. */
  setTracer(tracer: RedisCommandTracer | null): void {
    this.tracer = tracer;
  }

  /** Listen to one event; returns a function that removes the listener. */
  on<E extends RedisEventName>(event: E, listener: (payload: RedisEventMap[E]) => void): () => void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener as (payload: never) => void]);
    this.commandObserved = this.listenerCount('command') > 0;
    return () => this.off(event, listener);
  }

  off<E extends RedisEventName>(event: E, listener: (payload: RedisEventMap[E]) => void): void {
    const current = this.listeners.get(event) ?? [];
    const i = current.indexOf(listener as (payload: never) => void);
    if (i >= 0) this.listeners.set(event, [...current.slice(0, i), ...current.slice(i + 1)]);
    this.commandObserved = this.listenerCount('command') > 0;
  }

  emit<E extends RedisEventName>(event: E, payload: RedisEventMap[E]): void {
    const listeners = this.listeners.get(event);
    if (!listeners) return;
    for (let i = 0; i < listeners.length; i++) {
      try {
        (listeners[i] as (payload: RedisEventMap[E]) => void)(payload);
      } catch {}
    }
  }

  listenerCount(event?: RedisEventName): number {
    if (event) return this.listeners.get(event)?.length ?? 0;
    let n = 0;
    for (const list of this.listeners.values()) n += list.length;
    return n;
  }

  removeAllListeners(): void {
    this.listeners.clear();
    this.commandObserved = false;
    this.tracer = null;
  }
}
