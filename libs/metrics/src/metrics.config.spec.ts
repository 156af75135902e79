import fc from 'fast-check';
import { DEFAULT_SERIES_COUNTERS, resolveMetricsConfig } from './metrics.config';
import { MetricsConfigError } from './metrics.errors';
import type { MetricsModuleOptions } from './metrics.interfaces';

const resolve = (env: Record<string, string | undefined>, options: Partial<MetricsModuleOptions> = {}) =>
  resolveMetricsConfig({ serviceName: 'orders', env, ...options });

function failure(fn: () => unknown): MetricsConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MetricsConfigError);
    return err as MetricsConfigError;
  }
  throw new Error('expected a MetricsConfigError');
}

describe('resolveMetricsConfig', () => {
  it('has everything on but tracing and Sentry by default', () => {
    const c = resolve({});
    expect(c.tracing).toBeNull();
    expect(c.sentry).toBeNull();
    expect(c.http).toMatchObject({ maxRoutes: 200 });
    expect(c.redis).toMatchObject({ maxCommands: 64, memoryRefreshInterval: 5_000 });
    expect(c.series).toEqual({
      client: 'default',
      retention: 86_400_000,
      flushInterval: 5_000,
      maxBufferedMinutes: 5,
      counters: DEFAULT_SERIES_COUNTERS,
      ignoreRoutes: ['/metrics'],
    });
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' },
      'OTEL_EXPORTER_OTLP_ENDPOINT',
    ],
    [{ OTEL_TRACES_EXPORTER: 'console' }, 'OTEL_TRACES_EXPORTER'],
    [{ OTEL_TRACES_EXPORTER: 'otlp,console' }, 'OTEL_TRACES_EXPORTER'],
  ])('turns tracing on from %j', (env, reason) => {
    expect(resolve(env).tracing).toMatchObject({ startSdk: true, redisCommands: true, reason });
  });

  it.each([
    [{}],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }],
    [{ OTEL_SERVICE_NAME: 'svc' }],
  ])('leaves tracing off with %j', (env) => {
    expect(resolve(env).tracing).toBeNull();
  });

  it('lets options override the environment in both directions', () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, { tracing: false }).tracing).toBeNull();
    expect(resolve({}, { tracing: { enabled: true } }).tracing).toMatchObject({ reason: 'tracing.enabled' });
    expect(resolve({ SENTRY_DSN: 'https://k@o.ingest.example/1' }, { sentry: false }).sentry).toBeNull();
    expect(
      resolve({ METRICS_SERIES_RETENTION: '600000' }, { series: { retention: 300_000 } }).series?.retention,
    ).toBe(300_000);
  });

  it('reads Sentry and series settings from the environment', () => {
    const c = resolve({
      SENTRY_DSN: 'https://k@o.ingest.example/42',
      SENTRY_ENVIRONMENT: 'staging',
      SENTRY_RELEASE: 'gw@1',
      METRICS_SERIES_RETENTION: '3600000',
      METRICS_SERIES_FLUSH_INTERVAL: '1000',
    });
    expect(c.sentry).toMatchObject({
      dsn: 'https://k@o.ingest.example/42',
      environment: 'staging',
      release: 'gw@1',
    });
    expect(c.series).toMatchObject({ retention: 3_600_000, flushInterval: 1_000 });
    expect(resolve({ METRICS_SERIES_ENABLED: 'no' }).series).toBeNull();
    // The kit's boolean words, as every lib reads them: on/off too.
    expect(resolve({ METRICS_SERIES_ENABLED: 'off' }).series).toBeNull();
    expect(resolve({ METRICS_SERIES_ENABLED: 'on' }).series).not.toBeNull();
    expect(resolve({ NODE_ENV: 'production', SENTRY_DSN: 'https://k@h/1' }).sentry?.environment).toBe(
      'production',
    );
  });

  it('takes serviceName from OTEL_SERVICE_NAME when the options leave it out', () => {
    expect(resolveMetricsConfig({ env: { OTEL_SERVICE_NAME: 'gw-2' } }).serviceName).toBe('gw-2');
    expect(failure(() => resolveMetricsConfig({ env: {} })).field).toBe('serviceName');
    expect(failure(() => resolveMetricsConfig({ env: { OTEL_SERVICE_NAME: 'a b' } })).field).toBe(
      'OTEL_SERVICE_NAME',
    );
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: 'jaeger' }, 'OTEL_TRACES_EXPORTER'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'json' }, 'OTEL_EXPORTER_OTLP_PROTOCOL'],
    [{ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'udp' }, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [{ OTEL_SDK_DISABLED: 'sometimes' }, 'OTEL_SDK_DISABLED'],
    [{ SENTRY_DSN: 'https://sentry.example.com/1' }, 'SENTRY_DSN'],
    [{ SENTRY_DSN: 'https://key@sentry.example.com/project' }, 'SENTRY_DSN'],
    [{ METRICS_SERIES_RETENTION: '1000' }, 'METRICS_SERIES_RETENTION'],
    [{ METRICS_SERIES_FLUSH_INTERVAL: '5s' }, 'METRICS_SERIES_FLUSH_INTERVAL'],
    [{ METRICS_SERIES_ENABLED: 'sometimes' }, 'METRICS_SERIES_ENABLED'],
  ])('refuses %j naming the variable', (env, field) => {
    const err = failure(() => resolve(env));
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  });

  it.each([
    [{ http: { maxRoutes: 0 } }, 'http.maxRoutes'],
    [{ http: { buckets: [1, 0.5] } }, 'http.buckets'],
    [{ redis: { maxComands: 3 } }, 'redis.maxComands'],
    [{ series: { retention: 1 } }, 'series.retention'],
    [{ series: { counters: { requests: 'redwing_x_total' } } }, 'series.counters.requests'],
    [{ series: { counters: { 'Bad-Name': 'redwing_x_total' } } }, 'series.counters.Bad-Name'],
    [
      { series: { counters: { cache_evictions: { metric: 'bad name' } } } },
      'series.counters.cache_evictions',
    ],
    [{ series: { ignoreRoutes: '/metrics' } }, 'series.ignoreRoutes'],
    [{ sentry: { dsn: 'nope' } }, 'sentry.dsn'],
    [{ tracing: { enabled: 'yes' } }, 'tracing.enabled'],
    [{ serviceNme: 'x' }, 'serviceNme'],
  ])('refuses options %j naming the field', (options, field) => {
    expect(failure(() => resolve({}, options as Partial<MetricsModuleOptions>)).field).toBe(field);
  });

  it('suggests the option a typo meant', () => {
    expect(failure(() => resolve({}, { redis: { maxComands: 3 } } as never)).message).toContain(
      'did you mean maxCommands?',
    );
  });

  it('never echoes a DSN, endpoint or other value in its messages (property)', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/);
    fc.assert(
      fc.property(
        secret,
        fc.constantFrom('SENTRY_DSN', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'METRICS_SERIES_RETENTION'),
        (s, name) => {
          const values: Record<string, string> = {
            SENTRY_DSN: `https://${s}@sentry.example.com/not-a-number`,
            OTEL_EXPORTER_OTLP_ENDPOINT: `ftp://user:${s}@collector`,
            METRICS_SERIES_RETENTION: `${s}x`,
          };
          const err = failure(() => resolve({ [name]: values[name] }));
          return !err.message.includes(s) && err.field === name;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('only ever throws MetricsConfigError, whatever the input (property)', () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(undefined),
      fc.array(fc.integer()),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            serviceName: fc.oneof(fc.string(), fc.constant('svc')),
            http: fc.oneof(fc.constant(false), fc.record({ maxRoutes: value, buckets: value })),
            redis: fc.oneof(
              fc.constant(false),
              fc.record({ maxCommands: value, memoryRefreshInterval: value }),
            ),
            series: fc.oneof(
              fc.constant(false),
              fc.record({ retention: value, flushInterval: value, client: value }),
            ),
            tracing: fc.oneof(fc.constant(false), fc.record({ enabled: value })),
          },
          { requiredKeys: [] },
        ),
        fc.dictionary(
          fc.constantFrom(
            'OTEL_TRACES_EXPORTER',
            'OTEL_EXPORTER_OTLP_ENDPOINT',
            'SENTRY_DSN',
            'METRICS_SERIES_RETENTION',
          ),
          fc.string(),
        ),
        (options, env) => {
          try {
            resolveMetricsConfig({ ...(options as MetricsModuleOptions), env });
          } catch (err) {
            return err instanceof MetricsConfigError;
          }
          return true;
        },
      ),
      { numRuns: 500 },
    );
  });
});
