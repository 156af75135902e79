import { Test, type TestingModule } from '@nestjs/testing';
import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import {
  REDWING_METRICS,
  RedisClientManager,
  RedisClientModule,
  type MetricsRegistry,
  type RedisClientModuleOptions,
} from '@redwing/redis';
import { SessionModule, SessionService, type SessionModuleOptions } from '@redwing/session';

import { redisOptions, type Topology } from '../../../test/nest-testing';

export { redisOptions, type Topology };

export const KEY_1 = 'test-key-one-0123456789abcdefghijklmnopqrstuvwxyz';
export const KEY_2 = 'test-key-two-0123456789abcdefghijklmnopqrstuvwxyz';

/** A MetricsRegistry that keeps counter values by `name{label=value}` (no prom-client needed). */
export class RecordingMetrics implements MetricsRegistry {
  readonly values = new Map<string, number>();
  counter(def: { name: string; labelNames?: readonly string[] }): never {
    const add = (key: string, v = 1) => this.values.set(key, (this.values.get(key) ?? 0) + v);
    return {
      inc: (a?: unknown, b?: number) => add(def.name, typeof a === 'number' ? a : (b ?? 1)),
      labels: (...values: string[]) => ({
        inc: (v = 1) =>
          add(`${def.name}{${(def.labelNames ?? []).map((l, i) => `${l}=${values[i]}`).join(',')}}`, v),
      }),
    } as never;
  }
  private readonly gauges = new Map<string, () => number>();
  gauge(def: Parameters<MetricsRegistry['gauge']>[0]): never {
    const { collect } = def;
    if (collect) {
      this.gauges.set(def.name, () => {
        let value = Number.NaN;
        const gauge = { set: (v: number) => (value = v), inc() {}, dec() {}, labels: () => gauge };
        void collect.call(gauge as never);
        return value;
      });
    }
    return { set() {}, inc() {}, dec() {}, labels: () => ({ set() {}, inc() {}, dec() {} }) } as never;
  }
  /** What a gauge's `collect()` sets now (NaN for a gauge without one). */
  gaugeValue(name: string): number {
    return this.gauges.get(name)?.() ?? Number.NaN;
  }
  histogram(): never {
    return { observe() {}, labels: () => ({ observe() {} }) } as never;
  }
  get(key: string): number {
    return this.values.get(key) ?? 0;
  }
}

@Module({})
class MetricsStubModule {}

/** A global module providing `REDWING_METRICS` as MetricsModule does. */
export function metricsStub(metrics: MetricsRegistry): DynamicModule {
  return {
    module: MetricsStubModule,
    global: true,
    providers: [{ provide: REDWING_METRICS, useValue: metrics }],
    exports: [REDWING_METRICS],
  };
}

export interface SessionInstance {
  module: TestingModule;
  sessions: SessionService;
  manager: RedisClientManager;
  metrics: RecordingMetrics;
}

/** A Nest context with RedisClientModule + SessionModule; waits for Redis and the revocation channel. */
export async function bootSessions(
  topology: Topology,
  options: SessionModuleOptions = {},
  more: { redis?: Partial<RedisClientModuleOptions>; metadata?: ModuleMetadata; waitReady?: boolean } = {},
): Promise<SessionInstance> {
  const metrics = new RecordingMetrics();
  const module = await Test.createTestingModule({
    imports: [
      metricsStub(metrics),
      RedisClientModule.forRoot(redisOptions(topology, more.redis)),
      SessionModule.forRoot({ keys: [KEY_1], useEnv: false, ...options }),
      ...(more.metadata?.imports ?? []),
    ],
    providers: more.metadata?.providers ?? [],
  }).compile();
  await module.init();
  const sessions = module.get(SessionService);
  const manager = module.get(RedisClientManager);
  if (more.waitReady !== false) {
    if (!(await manager.get().waitUntilReady(10_000))) throw new Error('Redis client not ready within 10 s');
    await sessions.revocationsReady();
  }
  return { module, sessions, manager, metrics };
}
