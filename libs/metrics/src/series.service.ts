import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Counter } from 'prom-client';
import { RedisClientManager, type ManagedRedisClient } from '@redwing/redis';
import { BUILTIN_SERIES, type ResolvedMetricsConfig } from './metrics.config';
import { METRICS_CONFIG } from './metrics.constants';
import { SeriesUnavailableError } from './metrics.errors';
import { MetricsService } from './metrics.service';

/** Width of one bucket, in ms. */
export const BUCKET = 60_000;
/** Most buckets one query reads (24 h). */
export const MAX_QUERY_BUCKETS = 1_440;
const SERIES_NAME = /^[a-z][a-z0-9_]{0,39}$/;
const MAX_SERIES = 32;
/** Hash field holding an instance's presence in a bucket: `i:<instance id>`. */
const INSTANCE_FIELD = 'i:';

/** How a flush ended. */
export type FlushOutcome = 'ok' | 'empty' | 'skipped' | 'failed' | 'disabled';

/** One series over a range: per-minute points and the aggregates. */
export interface SeriesRange {
  /** `[bucket start (epoch ms), count]`, one per minute of the range, oldest first. */
  points: Array<[number, number]>;
  /** Total over the range. */
  sum: number;
  /** Mean per minute over the range. */
  avg: number;
  /** Mean per second over the covered time (the last bucket counts only up to now). */
  rate: number;
}

/** Result of {@link SeriesService.query}. */
export interface SeriesQueryResult {
  service: string;
  /** Start of the first bucket and end of the last (epoch ms). */
  from: number;
  to: number;
  bucket: number;
  /** Distinct gateway instances that wrote to any bucket of the range. */
  instances: number;
  series: Record<string, SeriesRange>;
}

/**
 * Cluster-wide per-minute series in Redis, aggregated over every instance of the service: requests and
 * errors (from the HTTP observer), cache hits/misses/stale and limiter rejections (sampled from the
 * counters those libs register), and any series an app adds with {@link increment}.
 *
 * Recording never touches Redis: counts go to a local buffer that a timer flushes every `flushInterval`
 * with one pipeline of `HINCRBY` + `PEXPIRE` (every key has a TTL of `retention`). While the client is
 * unavailable the flush is skipped and counted, and the buffer is kept for `maxBufferedMinutes` (older
 * minutes are dropped and counted). A pipeline that fails after sending is never retried — it may have
 * been applied — so a failure can lose counts but never double them.
 *
 * Keys: `<prefix>:metrics:{series:<service>}:<minute>` — one hash per minute, fields per series plus
 * `i:<instance>` markers; the hash tag keeps every bucket of a service in one Cluster slot.
 */
@Injectable()
export class SeriesService implements OnModuleInit, BeforeApplicationShutdown {
  /** This process's id in the buckets' instance markers. */
  readonly instanceId = `${hostname().slice(0, 32)}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly logger = new Logger('MetricsSeries');
  private readonly settings: ResolvedMetricsConfig['series'];
  private readonly names = new Set<string>(BUILTIN_SERIES);
  /** minute number → series → count */
  private readonly buffer = new Map<number, Map<string, number>>();
  private readonly lastSampled = new Map<string, number>();
  /** Everything this instance counted since start, per series (recorded and sampled). */
  private readonly totals = new Map<string, number>();
  private client?: ManagedRedisClient;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<FlushOutcome>;
  private flushes?: Counter<'outcome'>;
  private dropped?: Counter;
  private readonly ignored: Set<string>;
  /**
   * The HTTP observer's per-request counts ({@link countRequest}), kept as plain numbers for the minute
   * `requestMinute` and folded into the buffer when the minute changes, at each flush and when totals are read.
   */
  private requestMinute = -1;
  private requestCount = 0;
  private errorCount = 0;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    private readonly metrics: MetricsService,
    @Optional() private readonly redis?: RedisClientManager,
  ) {
    this.settings = redis ? config.series : null;
    this.ignored = new Set(this.settings?.ignoreRoutes ?? []);
    for (const name of Object.keys(this.settings?.counters ?? {})) this.names.add(name);
  }

  /** Whether series are recorded (configured on, and `RedisClientModule` present). */
  get enabled(): boolean {
    return this.settings !== null;
  }

  /** The service the series belong to (`serviceName`). */
  get serviceName(): string {
    return this.config.serviceName;
  }

  /** Every series name known to this instance. */
  get seriesNames(): string[] {
    return [...this.names];
  }

  onModuleInit(): void {
    if (!this.settings || !this.redis) return;
    this.client = this.redis.get(this.settings.client);
    this.flushes = this.metrics.counter({
      name: 'redwing_metrics_series_flushes_total',
      help: 'Flushes of the local series buffer to Redis: ok, skipped (Redis unavailable, nothing sent, buffer kept), failed (sent, not confirmed; dropped).',
      labelNames: ['outcome'],
    });
    this.dropped = this.metrics.counter({
      name: 'redwing_metrics_series_dropped_total',
      help: 'Counts (requests, hits, …) that never reached the Redis series: failed flushes, and minutes dropped from a full buffer while Redis was unavailable.',
    });
    this.timer = setInterval(() => void this.flush(), this.settings.flushInterval);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.settings) await this.flush();
  }

  /** Whether requests to this route template count as `requests` (the ignore list excludes it). */
  countsRoute(route: string | undefined): boolean {
    return route === undefined || !this.ignored.has(route);
  }

  /**
   * Add `n` to series `name` in the current minute (local; written at the next flush). Names are
   * 1–40 of `a-z 0-9 _`; at most 32 series per service.
   * @throws Error for an invalid name or a 33rd series
   */
  increment(name: string, n = 1): void {
    if (!this.settings || n <= 0 || !Number.isFinite(n)) return;
    if (!this.names.has(name)) {
      if (!SERIES_NAME.test(name)) {
        throw new Error(`Series name "${name}" must be 1–40 of a-z 0-9 _, starting with a letter.`);
      }
      if (this.names.size >= MAX_SERIES) {
        throw new Error(`At most ${MAX_SERIES} series per service; "${name}" would be one more.`);
      }
      this.names.add(name);
    }
    this.add(Math.floor(Date.now() / BUCKET), name, n);
  }

  /**
   * Counts one served request in the `requests` series (and in `errors` when `error`): what
   * `increment('requests')` does, as two additions on the per-request path (the HTTP observer's).
   * @internal
   */
  countRequest(error: boolean): void {
    if (!this.settings) return;
    const minute = Math.floor(Date.now() / BUCKET);
    if (minute !== this.requestMinute) this.foldRequests(minute);
    this.requestCount++;
    if (error) this.errorCount++;
  }

  private foldRequests(nextMinute = this.requestMinute): void {
    if (this.requestCount > 0) this.add(this.requestMinute, 'requests', this.requestCount);
    if (this.errorCount > 0) this.add(this.requestMinute, 'errors', this.errorCount);
    this.requestCount = 0;
    this.errorCount = 0;
    this.requestMinute = nextMinute;
  }

  /**
   * Write the local buffer (and the increase of every sampled counter) to Redis now. Runs one flush at
   * a time; a call during a flush waits for it. Never throws.
   */
  flush(): Promise<FlushOutcome> {
    if (!this.settings || !this.client) return Promise.resolve('disabled');
    this.flushing ??= this.doFlush().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * Per-minute points and sum / avg / rate of the named series (all when omitted) between `from` and
   * `to` (epoch ms; the range is widened to whole minutes, at most 24 h, and clipped to the retention).
   * @throws SeriesUnavailableError when the Redis client is unavailable
   * @throws RangeError for an empty, inverted or too long range
   */
  async query(range: { from: number; to: number; names?: string[] }): Promise<SeriesQueryResult> {
    const settings = this.settings;
    const client = this.client;
    if (!settings || !client)
      throw new Error('Series are disabled (series: false, or no RedisClientModule).');
    const now = Date.now();
    const to = Math.min(range.to, now);
    const from = Math.max(range.from, now - settings.retention);
    if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
      throw new RangeError('The range is empty or inverted: from must be before to, within the retention.');
    }
    const first = Math.floor(from / BUCKET);
    const last = Math.floor(to / BUCKET);
    if (last - first + 1 > MAX_QUERY_BUCKETS) {
      throw new RangeError(`The range covers more than ${MAX_QUERY_BUCKETS} minutes (24 h); narrow it.`);
    }
    const names = range.names?.length ? range.names : this.seriesNames;
    if (!client.isAvailable()) throw new SeriesUnavailableError(client.name);
    const pipeline = client.command.pipeline();
    for (let m = first; m <= last; m++) pipeline.hgetall(this.key(m));
    let replies: Array<[Error | null, unknown]>;
    try {
      replies = (await pipeline.exec()) ?? [];
    } catch (err) {
      throw new SeriesUnavailableError(client.name, { cause: err });
    }
    const failed = replies.find(([err]) => err);
    if (failed) throw new SeriesUnavailableError(client.name, { cause: failed[0] });

    const instances = new Set<string>();
    const series: Record<string, SeriesRange> = {};
    for (const name of names) series[name] = { points: [], sum: 0, avg: 0, rate: 0 };
    replies.forEach(([, reply], i) => {
      const hash = (reply ?? {}) as Record<string, string>;
      for (const field of Object.keys(hash)) {
        if (field.startsWith(INSTANCE_FIELD)) instances.add(field.slice(INSTANCE_FIELD.length));
      }
      const t = (first + i) * BUCKET;
      for (const name of names) {
        const v = Number(hash[name] ?? 0);
        series[name].points.push([t, v]);
        series[name].sum += v;
      }
    });
    const minutes = last - first + 1;
    const seconds = Math.max(1, (Math.min((last + 1) * BUCKET, now) - first * BUCKET) / 1_000);
    for (const s of Object.values(series)) {
      s.avg = s.sum / minutes;
      s.rate = s.sum / seconds;
    }
    return {
      service: this.config.serviceName,
      from: first * BUCKET,
      to: (last + 1) * BUCKET,
      bucket: BUCKET,
      instances: instances.size,
      series,
    };
  }

  /** Redis key of a minute bucket (minute = epoch ms / 60 000). */
  key(minute: number): string {
    return this.redis!.key('metrics', `{series:${this.config.serviceName}}`, String(minute));
  }

  /**
   * What this instance counted since it started, per series (requests and errors as recorded, lib
   * counters as of the last flush). Local only: readable while Redis is down.
   */
  localTotals(): Record<string, number> {
    this.foldRequests();
    return Object.fromEntries([...this.names].map((n) => [n, this.totals.get(n) ?? 0]));
  }

  private add(minute: number, name: string, n: number): void {
    this.totals.set(name, (this.totals.get(name) ?? 0) + n);
    let bucket = this.buffer.get(minute);
    if (!bucket) {
      bucket = new Map();
      this.buffer.set(minute, bucket);
    }
    bucket.set(name, (bucket.get(name) ?? 0) + n);
  }

  /** Adds the increase of every sampled counter since the last flush to the current minute. */
  private async sample(minute: number): Promise<void> {
    for (const [name, source] of Object.entries(this.settings!.counters)) {
      let value: number | undefined;
      try {
        value = await this.metrics.sum(source.metric, source.labels);
      } catch {
        continue;
      }
      if (value === undefined) continue;
      const previous = this.lastSampled.get(name) ?? 0;
      // A counter below its last value was reset (re-registered): everything it holds is new.
      const delta = value >= previous ? value - previous : value;
      this.lastSampled.set(name, value);
      if (delta > 0) this.add(minute, name, delta);
    }
  }

  private async doFlush(): Promise<FlushOutcome> {
    const settings = this.settings!;
    const client = this.client!;
    const now = Date.now();
    const minute = Math.floor(now / BUCKET);
    this.foldRequests();
    await this.sample(minute);

    if (!client.isAvailable()) {
      // Nothing is sent; keep what fits in the buffer for the next flush.
      const keep = Math.max(1, settings.maxBufferedMinutes);
      for (const m of [...this.buffer.keys()].sort((a, b) => a - b)) {
        if (m > minute - keep) continue;
        this.dropped!.inc(total(this.buffer.get(m)!));
        this.buffer.delete(m);
      }
      this.flushes!.inc({ outcome: 'skipped' });
      return 'skipped';
    }

    const batch = [...this.buffer.entries()];
    this.buffer.clear();
    // The current minute gets this instance's marker even when it counted nothing.
    if (!batch.some(([m]) => m === minute)) batch.push([minute, new Map()]);
    const pipeline = client.command.pipeline();
    const expected: number[] = [];
    for (const [m, counts] of batch) {
      const key = this.key(m);
      for (const [name, n] of counts) {
        pipeline.hincrby(key, name, n);
        expected.push(n);
      }
      pipeline.hset(key, `${INSTANCE_FIELD}${this.instanceId}`, '1');
      expected.push(0);
      // The bucket lives `retention` after its minute ended, whichever instance wrote last.
      pipeline.pexpire(key, Math.max(1_000, (m + 1) * BUCKET + settings.retention - now));
      expected.push(0);
    }
    try {
      const replies = (await pipeline.exec()) ?? [];
      let lost = 0;
      replies.forEach(([err], i) => {
        if (err) lost += expected[i] ?? 0;
      });
      if (replies.length < expected.length) lost += expected.slice(replies.length).reduce((a, b) => a + b, 0);
      if (lost > 0 || replies.some(([err]) => err)) {
        this.dropped!.inc(lost);
        this.flushes!.inc({ outcome: 'failed' });
        return 'failed';
      }
      this.flushes!.inc({ outcome: 'ok' });
      return batch.every(([, counts]) => counts.size === 0) ? 'empty' : 'ok';
    } catch (err) {
      const lost = expected.reduce((a, b) => a + b, 0);
      this.dropped!.inc(lost);
      this.flushes!.inc({ outcome: 'failed' });
      this.logger.debug(`series flush failed, ${lost} counts dropped: ${(err as Error).message}`);
      return 'failed';
    }
  }
}

function total(counts: Map<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}
