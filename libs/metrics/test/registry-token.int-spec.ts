// MetricsModule provides the REDWING_METRICS token that every lib injects (owned by @redwing/redis, so no
// lib loads @redwing/metrics): a metric defined through the token is served at GET /metrics, and a lib
// without MetricsModule gets `undefined` and records nothing.
import { Inject, Injectable, Module, Optional, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { REDWING_METRICS, type CounterMetric, type MetricsRegistry } from '@redwing/redis';
import { MetricsModule, MetricsService } from '../src';
import { sample } from './receivers';

/** A lib's service, written the way the kit says: optional injection of the token, never a require(). */
@Injectable()
class WidgetService {
  private readonly made?: CounterMetric;

  constructor(@Optional() @Inject(REDWING_METRICS) readonly metrics?: MetricsRegistry) {
    this.made = metrics?.counter({
      name: 'redwing_widgets_made_total',
      help: 'Widgets made, by kind.',
      labelNames: ['kind'],
    });
  }

  make(kind: string): void {
    this.made?.inc({ kind });
  }
}

@Module({ providers: [WidgetService], exports: [WidgetService] })
class WidgetModule {}

const quiet = {
  serviceName: 'token-test',
  useEnv: false,
  defaultMetrics: false,
  redis: false,
  tracing: false,
  sentry: false,
  series: false,
} as const;

describe('REDWING_METRICS', () => {
  let app: INestApplication;

  afterEach(async () => {
    await app?.close();
  });

  it('is the MetricsService, injectable by any module, and what it defines shows in GET /metrics', async () => {
    const module = await Test.createTestingModule({
      imports: [MetricsModule.forRoot(quiet), WidgetModule],
    }).compile();
    app = module.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;

    const widgets = app.get(WidgetService);
    expect(widgets.metrics).toBe(app.get(MetricsService));
    expect(app.get(REDWING_METRICS)).toBe(app.get(MetricsService));
    widgets.make('round');
    widgets.make('round');
    widgets.make('square');

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('# HELP redwing_widgets_made_total Widgets made, by kind.');
    expect(text).toContain('# TYPE redwing_widgets_made_total counter');
    expect(sample(text, 'redwing_widgets_made_total', { kind: 'round' })).toBe(2);
    expect(sample(text, 'redwing_widgets_made_total', { kind: 'square' })).toBe(1);
  });

  it('returns the first metric when two libs define the same one', async () => {
    const module = await Test.createTestingModule({ imports: [MetricsModule.forRoot(quiet)] }).compile();
    app = module.createNestApplication({ logger: false });
    await app.init();
    const registry = app.get<MetricsRegistry>(REDWING_METRICS);
    const definition = { name: 'redwing_widgets_shared_total', help: 'Shared.', labelNames: ['kind'] };
    expect(registry.counter(definition)).toBe(registry.counter(definition));
  });

  it('is absent without MetricsModule, and the lib records nothing', async () => {
    const module = await Test.createTestingModule({ imports: [WidgetModule] }).compile();
    app = module.createNestApplication({ logger: false });
    await app.init();
    const widgets = app.get(WidgetService);
    expect(widgets.metrics).toBeUndefined();
    expect(() => widgets.make('round')).not.toThrow();
  });
});
