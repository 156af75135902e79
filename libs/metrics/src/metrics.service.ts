import { Injectable } from '@nestjs/common';
import {
  Gauge,
  Registry,
  type Counter,
  type Histogram,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type Metric,
} from 'prom-client';
import { TallyCounter, TallyHistogram } from './tally';

/** Every Redwing metric is `redwing_<lib>_<what>_<unit>`, with a unit suffix Prometheus recognises. */
export const METRIC_NAME =
  /^redwing_[a-z][a-z0-9]*(_[a-z0-9]+)*_(total|seconds|bytes|ratio|info|state|count|current)$/;

/**
 * Name segments `promtool check metrics` reads as abbreviated units (`redwing_queue_wait_ms_…`) or as
 * non-base units (`…_milliseconds`); a name containing one fails the lint, so it is refused up front.
 */
const NOT_BASE_UNITS = new Set([
  's',
  'ms',
  'us',
  'ns',
  'sec',
  'b',
  'kb',
  'mb',
  'gb',
  'tb',
  'pb',
  'm',
  'h',
  'd',
  'milliseconds',
  'microseconds',
  'nanoseconds',
  'minutes',
  'hours',
  'days',
  'weeks',
  'kilobytes',
  'megabytes',
  'gigabytes',
]);

/** Suffixes Prometheus reserves: `_total` for counters, `_count`/`_sum`/`_bucket` for histogram series. */
const RESERVED_FOR_OTHER_TYPES = /_(total|count|sum|bucket)$/;

/** What `MetricsService.counter()` takes: prom-client's counter configuration without `registers`. */
export type CounterDefinition<L extends string> = Pick<
  CounterConfiguration<L>,
  'name' | 'help' | 'labelNames'
>;
/** What `MetricsService.gauge()` takes; `collect()` runs at every scrape (`this` is the gauge). */
export type GaugeDefinition<L extends string> = Pick<
  GaugeConfiguration<L>,
  'name' | 'help' | 'labelNames' | 'collect'
>;
/** What `MetricsService.histogram()` takes; `buckets` are upper bounds in the metric's unit. */
export type HistogramDefinition<L extends string> = Pick<
  HistogramConfiguration<L>,
  'name' | 'help' | 'labelNames' | 'buckets'
>;

/** The kind of metric a definition asks for (prom-client's `type` field). */
type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * The one metrics registry of the app, and the API every Redwing lib registers its metrics through.
 * Defining a metric twice with the same name, type and labels returns the first (libs may be imported by
 * several modules); a name outside the `redwing_<lib>_<what>_<unit>` scheme, or one that would make the
 * exposition fail `promtool check metrics`, is refused.
 *
 * Rules on top of {@link METRIC_NAME}: counters end in `_total`; gauges and histograms do not end in
 * `_total` or `_count` (use `_current` for a gauge of things); no segment is an abbreviated or non-base
 * unit (`ms`, `s`, `milliseconds`, …: use `_seconds` and `_bytes`).
 * @example
 * const hits = metrics.counter({ name: 'redwing_cache_hits_total', help: 'Cache hits', labelNames: ['tier'] });
 * hits.inc({ tier: 'l1' });
 */
@Injectable()
export class MetricsService {
  /** The prom-client registry behind every metric of the app. */
  readonly registry = new Registry();

  /**
   * A counter (monotonic). The name must end in `_total`. It counts in plain numbers, exported at scrape
   * time: `labels(...)` returns the series of those values — keep it, and `inc()` is one addition.
   * @throws Error when the name breaks the naming rules, or a metric of that name exists with another
   *   type or other labels
   */
  counter<L extends string = string>(definition: CounterDefinition<L>): Counter<L> {
    return this.define(
      'counter',
      definition,
      () => new TallyCounter<L>({ ...definition, registers: [this.registry] }),
    );
  }

  /**
   * A gauge (goes up and down, or is computed at scrape time by `collect`).
   * @throws Error when the name breaks the naming rules, or a metric of that name exists with another
   *   type or other labels
   */
  gauge<L extends string = string>(definition: GaugeDefinition<L>): Gauge<L> {
    return this.define(
      'gauge',
      definition,
      () => new Gauge<L>({ ...definition, registers: [this.registry] }),
    );
  }

  /**
   * A histogram; durations in seconds (`_seconds`), sizes in bytes (`_bytes`). It counts in plain numbers,
   * exported at scrape time: `labels(...)` returns the series of those values — keep it, and `observe()`
   * is a bucket search and three additions (no label hashing per observation).
   * @throws Error when the name breaks the naming rules, or a metric of that name exists with another
   *   type or other labels
   */
  histogram<L extends string = string>(definition: HistogramDefinition<L>): Histogram<L> {
    return this.define(
      'histogram',
      definition,
      () => new TallyHistogram<L>({ ...definition, registers: [this.registry] }),
    );
  }

  /** Prometheus text exposition of every registered metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content type of {@link metrics}: `text/plain; version=0.0.4; charset=utf-8`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Sum of a metric's values whose labels include `labels` (all of them when omitted) — for a histogram,
   * the number of observations — or `undefined` when no metric of that name is registered. Used to
   * sample other libs' counters.
   */
  async sum(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    const metric = this.registry.getSingleMetric(name);
    if (!metric) return undefined;
    const { values, type } = await metric.get();
    const countOnly = String(type) === 'histogram' ? `${name}_count` : undefined;
    let total = 0;
    for (const v of values) {
      if (countOnly && (v as { metricName?: string }).metricName !== countOnly) continue;
      const l = v.labels as Record<string, string | number | undefined>;
      if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) total += v.value;
    }
    return total;
  }

  private define<M extends Metric<string>>(
    kind: MetricKind,
    definition: { name: string; labelNames?: readonly string[] },
    create: () => M,
  ): M {
    const { name } = definition;
    checkName(kind, name);
    const existing = this.registry.getSingleMetric(name) as (M & { labelNames?: string[] }) | undefined;
    if (!existing) return create();
    const existingKind = (existing as unknown as { type?: string }).type;
    const wanted = [...(definition.labelNames ?? [])].sort().join(',');
    const had = [...(existing.labelNames ?? [])].sort().join(',');
    if (existingKind !== kind || wanted !== had) {
      throw new Error(
        `Metric "${name}" is already registered as a ${existingKind} with labels [${had}]; ` +
          `it cannot be redefined as a ${kind} with labels [${wanted}]. Use another name or the same definition.`,
      );
    }
    return existing;
  }
}

function checkName(kind: MetricKind, name: string): void {
  if (!METRIC_NAME.test(name)) {
    throw new Error(
      `Metric name "${name}" does not follow redwing_<lib>_<what>_<unit> ` +
        `(lower case, unit one of total, seconds, bytes, ratio, info, state, count, current).`,
    );
  }
  if (kind === 'counter' && !name.endsWith('_total')) {
    throw new Error(`Counter "${name}" must end in _total (Prometheus convention; promtool refuses it).`);
  }
  if (kind !== 'counter' && RESERVED_FOR_OTHER_TYPES.test(name)) {
    throw new Error(
      `A ${kind} must not end in _total or _count ("${name}"): Prometheus reserves them for counters and ` +
        `histogram series. Use _current for a gauge of things, or a counter.`,
    );
  }
  const badUnit = name.split('_').find((part) => NOT_BASE_UNITS.has(part));
  if (badUnit) {
    throw new Error(
      `Metric name "${name}" contains "${badUnit}", which promtool reads as a non-base or abbreviated unit; ` +
        `measure durations in _seconds and sizes in _bytes.`,
    );
  }
}
