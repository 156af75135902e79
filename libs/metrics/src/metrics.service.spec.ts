import { MetricsService } from './metrics.service';

describe('MetricsService', () => {
  it('defines each metric once and returns the same instance for the same definition', () => {
    const m = new MetricsService();
    const a = m.counter({ name: 'redwing_cache_hits_total', help: 'Hits', labelNames: ['tier'] });
    const b = m.counter({ name: 'redwing_cache_hits_total', help: 'Hits', labelNames: ['tier'] });
    expect(b).toBe(a);
    a.inc({ tier: 'l1' }, 2);
    expect(m.registry.getMetricsAsArray()).toHaveLength(1);
  });

  it('refuses to redefine a name with another type or other labels', () => {
    const m = new MetricsService();
    m.counter({ name: 'redwing_queue_jobs_total', help: 'Jobs', labelNames: ['queue'] });
    expect(() =>
      m.counter({ name: 'redwing_queue_jobs_total', help: 'Jobs', labelNames: ['state'] }),
    ).toThrow(/already registered as a counter with labels \[queue\]/);
    m.gauge({ name: 'redwing_queue_depth_current', help: 'Depth' });
    expect(() => m.histogram({ name: 'redwing_queue_depth_current', help: 'Depth' })).toThrow(/as a gauge/);
  });

  it.each([
    ['cacheHits_total', 'counter', /redwing_<lib>_<what>_<unit>/],
    ['redwing_cache_hits', 'counter', /redwing_<lib>_<what>_<unit>/],
    ['redwing_lock_wait_seconds', 'counter', /must end in _total/],
    ['redwing_queue_jobs_total', 'gauge', /must not end in _total or _count/],
    ['redwing_queue_jobs_count', 'gauge', /must not end in _total or _count/],
    ['redwing_queue_jobs_count', 'counter', /must end in _total/],
    ['redwing_lock_wait_ms_seconds', 'histogram', /"ms"/],
    ['redwing_cache_size_mb_bytes', 'gauge', /"mb"/],
    ['redwing_http_milliseconds_total', 'counter', /"milliseconds"/],
  ] as const)('refuses %s as a %s (promtool would reject the exposition)', (name, kind, message) => {
    const m = new MetricsService();
    const define = () =>
      kind === 'counter'
        ? m.counter({ name, help: 'x' })
        : kind === 'gauge'
          ? m.gauge({ name, help: 'x' })
          : m.histogram({ name, help: 'x' });
    expect(define).toThrow(message);
  });

  it.each([
    ['redwing_cache_hits_total', 'counter'],
    ['redwing_cache_l1_entries_current', 'gauge'],
    ['redwing_cache_l1_bytes', 'gauge'],
    ['redwing_cache_hit_ratio', 'gauge'],
    ['redwing_ratelimit_fallback_state', 'gauge'],
    ['redwing_lock_hold_seconds', 'histogram'],
    ['redwing_app_build_info', 'gauge'],
  ] as const)('accepts %s as a %s', (name, kind) => {
    const m = new MetricsService();
    const define = () =>
      kind === 'counter'
        ? m.counter({ name, help: 'x' })
        : kind === 'gauge'
          ? m.gauge({ name, help: 'x' })
          : m.histogram({ name, help: 'x' });
    expect(define).not.toThrow();
  });

  it('sums a metric over the values whose labels match, histograms by observation count', async () => {
    const m = new MetricsService();
    const decisions = m.counter({
      name: 'redwing_ratelimit_decisions_total',
      help: 'x',
      labelNames: ['result', 'mode'],
    });
    decisions.inc({ result: 'denied', mode: 'redis' }, 3);
    decisions.inc({ result: 'denied', mode: 'local' }, 2);
    decisions.inc({ result: 'allowed', mode: 'redis' }, 10);
    expect(await m.sum('redwing_ratelimit_decisions_total', { result: 'denied' })).toBe(5);
    expect(await m.sum('redwing_ratelimit_decisions_total')).toBe(15);
    const h = m.histogram({ name: 'redwing_cache_load_duration_seconds', help: 'x', buckets: [0.1, 1] });
    for (const v of [0.05, 0.5, 2]) h.observe(v);
    expect(await m.sum('redwing_cache_load_duration_seconds')).toBe(3);
    expect(await m.sum('redwing_missing_things_total')).toBeUndefined();
  });
});
