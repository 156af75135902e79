import { Inject, Injectable, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Counter, Gauge, Histogram } from 'prom-client';
import {
  RedisClientManager,
  type BreakerState,
  type RedisConnectionState,
  type RedisEventMap,
} from '@redwing/redis';
import { LabelLimiter } from './label-limiter';
import type { ResolvedMetricsConfig } from './metrics.config';
import { METRICS_CONFIG } from './metrics.constants';
import { MetricsService } from './metrics.service';
import type { HistogramSeries } from './tally';

const BREAKER_STATES: BreakerState[] = ['closed', 'open', 'half-open', 'forced-open', 'forced-closed'];
const CONNECTION_STATES: RedisConnectionState[] = ['connecting', 'ready', 'reconnecting', 'closed'];

/** Names of the Redis metrics (all labelled by `client`, the RedisClientModule client name). */
export const REDIS_METRICS = {
  commandDuration: 'redwing_redis_command_duration_seconds',
  commandErrors: 'redwing_redis_command_errors_total',
  breakerState: 'redwing_redis_breaker_state',
  breakerTransitions: 'redwing_redis_breaker_transitions_total',
  connectionState: 'redwing_redis_connection_state',
  up: 'redwing_redis_up_state',
  pingLatency: 'redwing_redis_ping_latency_seconds',
  fallbacks: 'redwing_redis_fallbacks_total',
  memoryUsed: 'redwing_redis_memory_used_bytes',
  memoryMax: 'redwing_redis_memory_max_bytes',
  poolConnections: 'redwing_redis_pool_connections_current',
  poolWaiters: 'redwing_redis_pool_waiters_current',
} as const;

/** Memory of one Redis as last sampled: `null` fields until it answered `INFO memory` once. */
export interface RedisMemory {
  usedBytes: number | null;
  maxBytes: number | null;
  /** When the sample was taken (epoch ms), or `null`. */
  sampledAt: number | null;
}

interface MemorySample {
  /** Last attempt (epoch ms), successful or not. */
  at: number;
  sampledAt?: number;
  used?: number;
  max?: number;
  pending?: Promise<void>;
}

/**
 * Turns the `@redwing/redis` event surface into Prometheus metrics: command latency and errors, breaker
 * state and transitions, connection state, health, fallback activations, pool size, and Redis memory
 * (`INFO memory`, sampled at most every `memoryRefreshInterval`, only while the client is available).
 * Labels are bounded: client names come from configuration, commands are capped per client.
 */
@Injectable()
export class RedisMetrics implements OnModuleInit, OnApplicationShutdown {
  private readonly offs: Array<() => void> = [];
  private readonly samples = new Map<string, MemorySample>();
  private readonly commandLabels = new Map<string, LabelLimiter>();
  /** Latency series by client, then command (only commands the limiter let through: bounded). */
  private readonly durationSeries = new Map<string, Map<string, HistogramSeries>>();
  private duration?: Histogram<'client' | 'command'>;
  private errors?: Counter<'client' | 'command' | 'outcome'>;
  private breakerState?: Gauge<'client' | 'state'>;
  private connectionState?: Gauge<'client' | 'state'>;
  private up?: Gauge<'client'>;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    private readonly metrics: MetricsService,
    @Optional() private readonly redis?: RedisClientManager,
  ) {}

  onModuleInit(): void {
    const options = this.config.redis;
    const redis = this.redis;
    if (!options || !redis) return;
    const m = this.metrics;
    this.duration = m.histogram({
      name: REDIS_METRICS.commandDuration,
      help: 'Redis command latency from send to reply, per client and command (commands refused before sending are not observed).',
      labelNames: ['client', 'command'],
      buckets: options.buckets,
    });
    this.errors = m.counter({
      name: REDIS_METRICS.commandErrors,
      help: 'Redis commands that failed, by outcome: reply-error (Redis refused it), timeout, unavailable (refused before sending: breaker open or disconnected), error.',
      labelNames: ['client', 'command', 'outcome'],
    });
    this.breakerState = m.gauge({
      name: REDIS_METRICS.breakerState,
      help: 'Circuit breaker state per client: 1 for the current state, 0 for the others.',
      labelNames: ['client', 'state'],
    });
    const transitions = m.counter({
      name: REDIS_METRICS.breakerTransitions,
      help: 'Circuit breaker transitions per client.',
      labelNames: ['client', 'from', 'to'],
    });
    this.connectionState = m.gauge({
      name: REDIS_METRICS.connectionState,
      help: 'Connection state of the command connection per client: 1 for the current state, 0 for the others.',
      labelNames: ['client', 'state'],
    });
    this.up = m.gauge({
      name: REDIS_METRICS.up,
      help: 'Health of each client: 1 when up (ready, last PING passed, breaker closed), 0 when degraded.',
      labelNames: ['client'],
    });
    m.gauge({
      name: REDIS_METRICS.pingLatency,
      help: 'Latency of the last health-check PING per client.',
      labelNames: ['client'],
      collect() {
        for (const [client, h] of Object.entries(redis.getHealth())) {
          if (h.latencyMs !== null) this.set({ client }, h.latencyMs / 1_000);
        }
      },
    });
    const fallbacks = m.counter({
      name: REDIS_METRICS.fallbacks,
      help: 'Times a lib served from its in-memory fallback because Redis was unavailable, per client, lib and operation.',
      labelNames: ['client', 'lib', 'operation'],
    });
    const refresh = () => this.refreshMemory();
    const samples = this.samples;
    m.gauge({
      name: REDIS_METRICS.memoryUsed,
      help: 'Memory Redis reports in use (INFO memory used_memory), sampled while the client is available.',
      labelNames: ['client'],
      async collect() {
        await refresh();
        for (const [client, s] of samples) if (s.used !== undefined) this.set({ client }, s.used);
      },
    });
    m.gauge({
      name: REDIS_METRICS.memoryMax,
      help: 'maxmemory of each Redis (0 = no limit), sampled with the memory in use.',
      labelNames: ['client'],
      async collect() {
        await refresh();
        for (const [client, s] of samples) if (s.max !== undefined) this.set({ client }, s.max);
      },
    });
    m.gauge({
      name: REDIS_METRICS.poolConnections,
      help: 'Dedicated connections open in the withConnection() pool of each client.',
      labelNames: ['client'],
      collect() {
        for (const c of redis.all()) this.set({ client: c.name }, c.stats().pool.size);
      },
    });
    m.gauge({
      name: REDIS_METRICS.poolWaiters,
      help: 'Borrowers waiting for a pooled connection, per client.',
      labelNames: ['client'],
      collect() {
        for (const c of redis.all()) this.set({ client: c.name }, c.stats().pool.waiters);
      },
    });

    for (const client of redis.all()) {
      const h = client.getHealth();
      this.setBreaker(client.name, h.breaker);
      this.setConnection(client.name, h.state);
      this.up.set({ client: client.name }, h.status === 'up' ? 1 : 0);
      this.commandLabels.set(client.name, new LabelLimiter(options.maxCommands));
    }
    const lib = new LabelLimiter(32);
    const operation = new LabelLimiter(128);
    this.offs.push(
      redis.events.on('command', (e) => this.onCommand(e)),
      redis.events.on('breaker', (e) => {
        this.setBreaker(e.client, e.current);
        transitions.inc({ client: e.client, from: e.previous, to: e.current });
      }),
      redis.events.on('state', (e) => this.setConnection(e.client, e.current)),
      redis.events.on('health', (e) => this.up?.set({ client: e.client }, e.health.status === 'up' ? 1 : 0)),
      redis.events.on('fallback', (e) =>
        fallbacks.inc({ client: e.client, lib: lib.get(e.lib), operation: operation.get(e.operation) }),
      ),
    );
  }

  onApplicationShutdown(): void {
    for (const off of this.offs.splice(0)) off();
  }

  private onCommand(e: RedisEventMap['command']): void {
    if (e.outcome !== 'unavailable') {
      // Refusals take no time and would drag the latency distribution towards zero.
      let byCommand = this.durationSeries.get(e.client);
      if (!byCommand) {
        byCommand = new Map();
        this.durationSeries.set(e.client, byCommand);
      }
      let series = byCommand.get(e.command);
      if (!series) {
        const command = this.commandLabel(e.client, e.command);
        series = this.duration!.labels(e.client, command) as unknown as HistogramSeries;
        // A command past the limiter's bound is looked up each time, so the map stays bounded.
        if (command === e.command) byCommand.set(e.command, series);
      }
      series.observe(e.durationMs / 1_000);
    }
    if (e.outcome !== 'ok') {
      const command = this.commandLabel(e.client, e.command);
      this.errors!.inc({ client: e.client, command, outcome: e.outcome });
    }
  }

  private commandLabel(client: string, command: string): string {
    return (this.commandLabels.get(client) ?? this.newLimiter(client)).get(command);
  }

  private newLimiter(client: string): LabelLimiter {
    const limiter = new LabelLimiter(this.config.redis?.maxCommands ?? 64);
    this.commandLabels.set(client, limiter);
    return limiter;
  }

  private setBreaker(client: string, current: BreakerState): void {
    for (const state of BREAKER_STATES) this.breakerState?.set({ client, state }, state === current ? 1 : 0);
  }

  private setConnection(client: string, current: RedisConnectionState): void {
    for (const state of CONNECTION_STATES) {
      this.connectionState?.set({ client, state }, state === current ? 1 : 0);
    }
  }

  /**
   * Memory of every client's Redis (`INFO memory`), refreshed when older than `memoryRefreshInterval` and
   * only while the client is available, so it never waits on a dead Redis; the last sample otherwise.
   */
  async memory(): Promise<Record<string, RedisMemory>> {
    await this.refreshMemory();
    const out: Record<string, RedisMemory> = {};
    for (const client of this.redis?.all() ?? []) {
      const s = this.samples.get(client.name);
      out[client.name] = {
        usedBytes: s?.used ?? null,
        maxBytes: s?.max ?? null,
        sampledAt: s?.used !== undefined ? (s.sampledAt ?? null) : null,
      };
    }
    return out;
  }

  private async refreshMemory(): Promise<void> {
    const redis = this.redis;
    const maxAge = this.config.redis?.memoryRefreshInterval ?? 5_000;
    if (!redis) return;
    const now = Date.now();
    const pending: Promise<void>[] = [];
    for (const client of redis.all()) {
      let sample = this.samples.get(client.name);
      if (!sample) {
        sample = { at: 0 };
        this.samples.set(client.name, sample);
      }
      if (sample.pending) {
        pending.push(sample.pending);
        continue;
      }
      if (now - sample.at < maxAge || !client.isAvailable()) continue;
      const s = sample;
      s.pending = (async () => {
        try {
          const info = await client.command.info('memory');
          s.used = infoField(info, 'used_memory');
          s.max = infoField(info, 'maxmemory');
          s.at = s.sampledAt = Date.now();
        } catch {
          s.at = Date.now(); // do not retry at every scrape while Redis struggles
        } finally {
          s.pending = undefined;
        }
      })();
      pending.push(s.pending);
    }
    await Promise.all(pending);
  }
}

function infoField(info: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : undefined;
}
