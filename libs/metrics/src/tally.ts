import {
  Counter,
  Histogram,
  type CounterConfiguration,
  type HistogramConfiguration,
  type LabelValues,
} from 'prom-client';

type Labels = Partial<Record<string, string | number>>;

/** prom-client's default buckets (the same ones `new Histogram()` uses when none are given). */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The key of one label combination: the values in `labelNames` order (`undefined` for a missing one), so
 * `{ a, b }` and `{ b, a }` are the same series.
 */
function keyOf(labelNames: readonly string[], labels: Labels): string {
  let key = '';
  for (let i = 0; i < labelNames.length; i++) {
    const v = labels[labelNames[i]];
    key += (i === 0 ? '' : '\u0001') + (v === undefined ? '\u0002' : String(v));
  }
  return key;
}

/** The metric's name (prom-client keeps it as a plain property; a getter here would break its constructor). */
function nameOf(metric: object): string {
  return (metric as { name: string }).name;
}

/** prom-client's checks, made once per new label combination instead of once per observation. */
function checkLabels(metric: string, labelNames: readonly string[], labels: Labels): void {
  for (const name of Object.keys(labels)) {
    if (!labelNames.includes(name)) {
      throw new Error(
        `Added label "${name}" is not included in initial labelset: ${JSON.stringify(labelNames)} (${metric})`,
      );
    }
  }
}

function labelsFrom(metric: string, labelNames: readonly string[], args: unknown[]): Labels {
  if (typeof args[0] === 'object' && args[0] !== null) return args[0] as Labels;
  if (args.length !== labelNames.length) {
    throw new Error(
      `Invalid number of arguments (${args.length}): "${args.join(', ')}" for label names ` +
        `(${labelNames.length}): "${labelNames.join(', ')}" (${metric}).`,
    );
  }
  const labels: Labels = {};
  for (let i = 0; i < labelNames.length; i++) labels[labelNames[i]] = args[i] as string;
  return labels;
}

/** One label combination of a {@link TallyHistogram}: plain numbers, read at scrape time. */
/**
 * Creates the series of `labels` under `key` (with only the declared label names, checked once, here) and
 * stores it. Called on a miss only, so a hit allocates nothing.
 */
function addSeries<S>(
  series: Map<string, S>,
  key: string,
  metric: string,
  labelNames: readonly string[],
  labels: Labels,
  make: (own: Labels) => S,
): S {
  checkLabels(metric, labelNames, labels);
  const own: Labels = {};
  for (const name of labelNames) if (labels[name] !== undefined) own[name] = labels[name];
  const s = make(own);
  series.set(key, s);
  return s;
}

export class HistogramSeries {
  /** Observations per bucket, not cumulative; the last slot holds those above the highest bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    private readonly owner: TallyHistogram,
    /** Label values of this series (their order is the exposition's order). */
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one value: a bucket search and three additions, no allocation. */
  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Starts a timer; the function it returns observes the seconds elapsed (end labels pick another series). */
  startTimer(): (labels?: Labels) => number {
    const start = process.hrtime.bigint();
    return (labels?: Labels) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (labels && Object.keys(labels).length > 0) {
        this.owner.observe({ ...this.labels, ...labels }, seconds);
      } else this.observe(seconds);
      return seconds;
    };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A prom-client `Histogram` that counts in plain numbers: each label combination is a
 * {@link HistogramSeries} (an array of bucket counts, a sum, a count), and the exposition is built from
 * them at scrape time. prom-client's own histogram hashes the label object and validates it on every
 * observation (~1 µs); here `labels(...)` returns the series itself, so a caller that keeps it pays a
 * bucket search and three additions per observation. `observe(labels, v)` still works (one key lookup).
 * The exposition is the one prom-client writes: same names, label order, `le` values, `+Inf`, sum, count.
 */
export class TallyHistogram<L extends string = string> extends Histogram<L> {
  declare private series: Map<string, HistogramSeries>;
  declare private bounds: readonly number[];

  constructor(configuration: HistogramConfiguration<L>) {
    super(configuration);
    this.bounds = [...(configuration.buckets ?? DEFAULT_BUCKETS)];
    // prom-client's constructor installs `observe` as an own property; route it to the series.
    this.observe = ((labels: LabelValues<L> | number, value?: number) =>
      this.tallyObserve(labels, value)) as Histogram<L>['observe'];
    this.series = new Map();
    // A histogram without labels exposes its zero series from the start, as prom-client's does.
    if (this.labelNamesOf().length === 0) this.seriesOf({});
  }

  private labelNamesOf(): readonly string[] {
    return (this as unknown as { labelNames: string[] }).labelNames;
  }

  private tallyObserve(labels: LabelValues<L> | number, value?: number): void {
    if (typeof labels === 'object' && labels !== null) this.seriesOf(labels as Labels).observe(value!);
    else this.seriesOf({}).observe(labels as number);
  }

  /** The series of these label values (created on first use); keep it and call `observe()` on it. */
  override labels(...args: string[] | [LabelValues<L>]): Histogram.Internal<L> & HistogramSeries {
    const labels = labelsFrom(nameOf(this), this.labelNamesOf(), args);
    return this.seriesOf(labels) as HistogramSeries & Histogram.Internal<L>;
  }

  override startTimer(labels?: LabelValues<L>): (labels?: LabelValues<L>) => number {
    const start = process.hrtime.bigint();
    return (end?: LabelValues<L>) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.seriesOf({ ...(labels as Labels), ...(end as Labels) }).observe(seconds);
      return seconds;
    };
  }

  override zero(labels: LabelValues<L>): void {
    this.seriesOf(labels as Labels).reset();
  }

  override reset(): void {
    // Called by prom-client's constructor too, before `series` exists.
    this.series?.clear();
  }

  override remove(...args: string[] | [LabelValues<L>]): void {
    const labelNames = this.labelNamesOf();
    this.series.delete(keyOf(labelNames, labelsFrom(nameOf(this), labelNames, args)));
  }

  private seriesOf(labels: Labels): HistogramSeries {
    const labelNames = this.labelNamesOf();
    const key = keyOf(labelNames, labels);
    return (
      this.series.get(key) ??
      addSeries(this.series, key, nameOf(this), labelNames, labels, (own) => {
        return new HistogramSeries(this as TallyHistogram, own, this.bounds);
      })
    );
  }

  /** What prom-client's registry reads at scrape time (and `get()` splays): built from the series. */
  async getForPromString(): Promise<Awaited<ReturnType<Histogram<L>['get']>>> {
    const collect = (this as unknown as { collect?: () => unknown }).collect;
    if (collect) await collect.call(this);
    const name = nameOf(this);
    const bucket = `${name}_bucket`;
    const values: unknown[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i];
        values.push({
          labels: { le: this.bounds[i] },
          sharedLabels: s.labels,
          value: cumulative,
          metricName: bucket,
          exemplar: null,
        });
      }
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: s.labels,
          value: s.count,
          metricName: bucket,
          exemplar: null,
        },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${name}_sum`, exemplar: undefined },
        {
          labels: {},
          sharedLabels: s.labels,
          value: s.count,
          metricName: `${name}_count`,
          exemplar: undefined,
        },
      );
    }
    const self = this as unknown as { help: string; type: string; aggregator: string };
    return {
      name,
      help: self.help,
      type: self.type,
      values,
      aggregator: self.aggregator,
    } as unknown as Awaited<ReturnType<Histogram<L>['get']>>;
  }
}

/** One label combination of a {@link TallyCounter}: a plain number, read at scrape time. */
export class CounterSeries {
  value = 0;

  constructor(readonly labels: Labels) {}

  inc(value?: number): void {
    if (value === undefined) {
      this.value++;
      return;
    }
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    if (value < 0) throw new Error('It is not possible to decrease a counter');
    this.value += value;
  }
}

/**
 * A prom-client `Counter` that counts in plain numbers, one {@link CounterSeries} per label combination,
 * exported at scrape time; `labels(...)` returns the series (keep it: `inc()` is one addition).
 */
export class TallyCounter<L extends string = string> extends Counter<L> {
  declare private series: Map<string, CounterSeries>;

  constructor(configuration: CounterConfiguration<L>) {
    super(configuration);
    this.inc = ((labels?: LabelValues<L> | number, value?: number) =>
      this.tallyInc(labels, value)) as Counter<L>['inc'];
    this.series = new Map();
    if (this.labelNamesOf().length === 0) this.seriesOf({});
  }

  private labelNamesOf(): readonly string[] {
    return (this as unknown as { labelNames: string[] }).labelNames;
  }

  private tallyInc(labels?: LabelValues<L> | number, value?: number): void {
    if (typeof labels === 'object' && labels !== null) this.seriesOf(labels as Labels).inc(value);
    else this.seriesOf({}).inc(labels as number | undefined);
  }

  override labels(...args: string[] | [LabelValues<L>]): Counter.Internal & CounterSeries {
    return this.seriesOf(labelsFrom(nameOf(this), this.labelNamesOf(), args));
  }

  override reset(): void {
    if (!this.series) return; // prom-client's constructor calls reset() before `series` exists
    this.series.clear();
    if (this.labelNamesOf().length === 0) this.seriesOf({});
  }

  override remove(...args: string[] | [LabelValues<L>]): void {
    const labelNames = this.labelNamesOf();
    this.series.delete(keyOf(labelNames, labelsFrom(nameOf(this), labelNames, args)));
  }

  private seriesOf(labels: Labels): CounterSeries {
    const labelNames = this.labelNamesOf();
    const key = keyOf(labelNames, labels);
    return (
      this.series.get(key) ??
      addSeries(this.series, key, nameOf(this), labelNames, labels, (own) => new CounterSeries(own))
    );
  }

  override async get(): ReturnType<Counter<L>['get']> {
    const collect = (this as unknown as { collect?: () => unknown }).collect;
    if (collect) await collect.call(this);
    // The series are `{ value, labels }` objects, as prom-client's own entries: returned live, like its, so a
    // gauge's collect() that adds to this counter during the same scrape is seen in it.
    const values = [...this.series.values()];
    const self = this as unknown as { help: string; type: string; aggregator: string };
    return {
      help: self.help,
      name: nameOf(this),
      type: self.type,
      values,
      aggregator: self.aggregator,
    } as unknown as Awaited<ReturnType<Counter<L>['get']>>;
  }
}
