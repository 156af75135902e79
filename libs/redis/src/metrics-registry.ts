import type { InjectionToken } from '@nestjs/common';

/**
 * Injection token of the app's metrics registry. `@redwing/metrics`' `MetricsModule` provides it (global);
 * every other lib injects it with `@Optional() @Inject(REDWING_METRICS)` and records nothing when it is
 * absent. `@redwing/redis` owns the token so no lib has to load `@redwing/metrics` to find it.
 * @example
 * constructor(@Optional() @Inject(REDWING_METRICS) metrics?: MetricsRegistry) {}
 */
export const REDWING_METRICS: InjectionToken = Symbol.for('redwing.metrics.registry');

/** Label values by label name. */
export type MetricLabels = Record<string, string | number>;

/** What every metric definition names: `redwing_<lib>_<what>_<unit>`, a help text, its label names. */
export interface MetricDefinition {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

/** A monotonic counter (prom-client's `Counter`, the part libs use). */
export interface CounterMetric {
  inc(labels: MetricLabels, value?: number): void;
  inc(value?: number): void;
  /**
   * The child of these label values (in `labelNames` order): create it once, count with `inc()`. With
   * `MetricsModule` it is a plain number written out at scrape time, so `inc()` is one addition.
   */
  labels(...values: string[]): { inc(value?: number): void };
}

/** A gauge (prom-client's `Gauge`, the part libs use). */
export interface GaugeMetric {
  set(labels: MetricLabels, value: number): void;
  set(value: number): void;
  inc(labels: MetricLabels, value?: number): void;
  inc(value?: number): void;
  dec(labels: MetricLabels, value?: number): void;
  dec(value?: number): void;
  labels(...values: string[]): {
    set(value: number): void;
    inc(value?: number): void;
    dec(value?: number): void;
  };
}

/** A histogram; durations in seconds, sizes in bytes (prom-client's `Histogram`, the part libs use). */
export interface HistogramMetric {
  observe(labels: MetricLabels, value: number): void;
  observe(value: number): void;
  /**
   * The child of these label values (in `labelNames` order): create it once, record with `observe()`. With
   * `MetricsModule` it is plain bucket counts, sum and count written out at scrape time: `observe()` is a
   * bucket search and three additions.
   */
  labels(...values: string[]): { observe(value: number): void };
}

/**
 * The registry API every Redwing lib defines its metrics through (implemented by `@redwing/metrics`'
 * `MetricsService`). Defining a metric twice with the same name, type and labels returns the first.
 * On a hot path, keep the `labels(...)` child of a counter or histogram and count through it: `MetricsModule`
 * keeps children as plain numbers exported at scrape time, so no label object is hashed per event. A value
 * that is a state rather than a count fits a gauge whose `collect` (run at every scrape) reads it.
 */
export interface MetricsRegistry {
  counter(definition: MetricDefinition): CounterMetric;
  gauge(
    definition: MetricDefinition & { collect?: (this: GaugeMetric) => void | Promise<void> },
  ): GaugeMetric;
  histogram(definition: MetricDefinition & { buckets?: number[] }): HistogramMetric;
}
