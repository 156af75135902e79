import { Counter, Histogram, Registry } from 'prom-client';
import { TallyCounter, TallyHistogram } from './tally';

/** The exposition of one metric built the prom-client way and the tally way, after the same operations. */
async function both<M>(
  make: (registry: Registry, tally: boolean) => M,
  ops: (metric: M) => void,
): Promise<{ expected: string; actual: string }> {
  const plain = new Registry();
  const tallied = new Registry();
  ops(make(plain, false));
  ops(make(tallied, true));
  return { expected: await plain.metrics(), actual: await tallied.metrics() };
}

describe('TallyHistogram', () => {
  const config = (registry: Registry) => ({
    name: 'redwing_http_request_duration_seconds',
    help: 'Durations',
    labelNames: ['method', 'route', 'status_class'] as const,
    buckets: [0.001, 0.01, 0.1, 1],
    registers: [registry],
  });
  const make = (registry: Registry, tally: boolean) =>
    tally
      ? new TallyHistogram<'method' | 'route' | 'status_class'>(config(registry))
      : new Histogram<'method' | 'route' | 'status_class'>(config(registry));

  it('writes the exposition prom-client writes for the same observations', async () => {
    const { expected, actual } = await both(make, (h) => {
      const ok = h.labels('GET', '/boards/:id', '2xx');
      for (const v of [0.0005, 0.001, 0.002, 0.05, 0.5, 2, 30]) ok.observe(v);
      h.observe({ method: 'POST', route: '/boards/:id/cards', status_class: '5xx' }, 0.02);
      h.labels('GET', 'unmatched', '4xx').observe(0.0001);
      h.observe({ method: 'GET', route: '/boards/:id', status_class: '2xx' }, 0.003);
    });
    expect(actual).toBe(expected);
    expect(actual).toContain(
      'redwing_http_request_duration_seconds_bucket{le="0.01",method="GET",route="/boards/:id",status_class="2xx"} 4',
    );
    expect(actual).toContain(
      'redwing_http_request_duration_seconds_count{method="GET",route="/boards/:id",status_class="2xx"} 8',
    );
  });

  it('writes the zero series of a histogram without labels, and its observations, like prom-client', async () => {
    const plainConfig = (registry: Registry) => ({
      name: 'redwing_lock_wait_seconds',
      help: 'Waits',
      buckets: [0.1, 1],
      registers: [registry],
    });
    const makePlain = (registry: Registry, tally: boolean) =>
      tally ? new TallyHistogram(plainConfig(registry)) : new Histogram(plainConfig(registry));
    const empty = await both(makePlain, () => undefined);
    expect(empty.actual).toBe(empty.expected);
    expect(empty.actual).toContain('redwing_lock_wait_seconds_count 0');
    const some = await both(makePlain, (h) => [0.05, 0.5, 5].forEach((v) => h.observe(v)));
    expect(some.actual).toBe(some.expected);
  });

  it('keeps one series per label combination, whatever the order of the label object', () => {
    const h = make(new Registry(), true) as TallyHistogram<'method' | 'route' | 'status_class'>;
    const s = h.labels('GET', '/a', '2xx');
    expect(h.labels('GET', '/a', '2xx')).toBe(s);
    expect(h.labels({ status_class: '2xx', route: '/a', method: 'GET' })).toBe(s);
    h.observe({ route: '/a', method: 'GET', status_class: '2xx' }, 0.5);
    expect(s.count).toBe(1);
    expect(s.counts).toEqual([0, 0, 0, 1, 0]);
  });

  it('counts what sum() reads, and a timer observes once', async () => {
    const registry = new Registry();
    const h = make(registry, true);
    const end = h.labels('GET', '/a', '2xx').startTimer();
    end();
    h.startTimer({ method: 'GET', route: '/a' })({ status_class: '2xx' });
    const { values } = await h.get();
    const count = values.find((v) => v.metricName === 'redwing_http_request_duration_seconds_count');
    expect(count?.value).toBe(2);
    expect(count?.labels).toEqual({ method: 'GET', route: '/a', status_class: '2xx' });
  });

  it('refuses what prom-client refuses: a non-finite value, an unknown label, a wrong number of values', () => {
    const h = make(new Registry(), true);
    expect(() => h.labels('GET', '/a', '2xx').observe(NaN)).toThrow(TypeError);
    expect(() => h.observe({ method: 'GET', tenant: 'x' } as never, 1)).toThrow(
      /not included in initial labelset/,
    );
    expect(() => h.labels('GET')).toThrow(/Invalid number of arguments/);
  });

  it('forgets a series on remove() and zeroes every series on reset()', async () => {
    const h = make(new Registry(), true);
    h.labels('GET', '/a', '2xx').observe(1);
    h.labels('GET', '/b', '2xx').observe(1);
    h.remove('GET', '/a', '2xx');
    let text = JSON.stringify((await h.get()).values);
    expect(text).not.toContain('"/a"');
    expect(text).toContain('"/b"');
    h.reset();
    text = JSON.stringify((await h.get()).values);
    expect(text).not.toContain('"/b"');
  });
});

describe('TallyCounter', () => {
  const config = (registry: Registry) => ({
    name: 'redwing_redis_command_errors_total',
    help: 'Errors',
    labelNames: ['client', 'command', 'outcome'] as const,
    registers: [registry],
  });
  const make = (registry: Registry, tally: boolean) =>
    tally
      ? new TallyCounter<'client' | 'command' | 'outcome'>(config(registry))
      : new Counter<'client' | 'command' | 'outcome'>(config(registry));

  it('writes the exposition prom-client writes for the same increments', async () => {
    const { expected, actual } = await both(make, (c) => {
      const timeouts = c.labels('default', 'get', 'timeout');
      timeouts.inc();
      timeouts.inc(2);
      c.inc({ client: 'default', command: 'set', outcome: 'reply-error' });
      c.inc({ client: 'default', command: 'get', outcome: 'timeout' }, 4);
      c.inc({ client: 'durable', command: 'evalsha' }, 0.5);
    });
    expect(actual).toBe(expected);
    expect(actual).toContain(
      'redwing_redis_command_errors_total{client="default",command="get",outcome="timeout"} 7',
    );
  });

  it('writes the zero value of a counter without labels, like prom-client', async () => {
    const plain = (registry: Registry) => ({
      name: 'redwing_lock_lost_total',
      help: 'x',
      registers: [registry],
    });
    const makePlain = (registry: Registry, tally: boolean) =>
      tally ? new TallyCounter(plain(registry)) : new Counter(plain(registry));
    const zero = await both(makePlain, () => undefined);
    expect(zero.actual).toBe(zero.expected);
    const three = await both(makePlain, (c) => [1, 2].forEach((n) => c.inc(n)));
    expect(three.actual).toBe(three.expected);
    expect(three.actual).toContain('redwing_lock_lost_total 3');
  });

  it('sees an increment a gauge makes in its collect() during the same scrape', async () => {
    const registry = new Registry();
    const c = make(registry, true);
    const series = c.labels('default', 'get', 'timeout');
    const pending = c.get();
    series.inc(5);
    const { values } = await pending;
    expect(values[0].value).toBe(5);
  });

  it('refuses a negative or non-finite increment', () => {
    const c = make(new Registry(), true);
    expect(() => c.labels('default', 'get', 'timeout').inc(-1)).toThrow(/decrease/);
    expect(() => c.inc({ client: 'default' }, Infinity)).toThrow(TypeError);
  });
});
