import { type INestApplication, type ModuleMetadata, type Type } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test, type TestingModule } from '@nestjs/testing';
import { MetricsService } from '@redwing/metrics';
import {
  RateLimitGuard,
  RateLimitModule,
  RateLimitService,
  type RateLimitModuleOptions,
} from '@redwing/rate-limit';
import { RedisClientManager, RedisClientModule, type RedisClientModuleOptions } from '@redwing/redis';
import { CapturingLogger, fastRedisOptions } from '../../../test/harness';

export { CapturingLogger, fastRedisOptions, sleep, waitFor } from '../../../test/harness';

/** The rate limiter's tests run with a 500 ms command timeout (the kit's default is 300 ms). */
const fastRedis = fastRedisOptions({ commandTimeout: 500 });

export type Adapter = 'fastify' | 'express';

import { TestMetricsModule } from '../../../test/nest-testing';

export { TestMetricsModule };

export interface Booted {
  module: TestingModule;
  service: RateLimitService;
  manager: RedisClientManager;
  metrics: MetricsService;
  logger: CapturingLogger;
}

function metadata(
  redis: RedisClientModuleOptions,
  rateLimit: RateLimitModuleOptions,
  controllers: Type<unknown>[] = [],
  providers: ModuleMetadata['providers'] = [],
): ModuleMetadata {
  return {
    imports: [
      RedisClientModule.forRoot({ ...fastRedis, ...redis }),
      TestMetricsModule,
      RateLimitModule.forRoot(rateLimit),
    ],
    controllers,
    // Extra providers first: an authenticating APP_GUARD among them runs before the rate-limit guard.
    providers: [...(providers ?? []), { provide: APP_GUARD, useClass: RateLimitGuard }],
  };
}

/** A Nest application context with Redis, metrics and the rate limiter, ready (Redis connected). */
export async function bootService(
  redis: RedisClientModuleOptions,
  rateLimit: RateLimitModuleOptions = {},
): Promise<Booted> {
  const logger = new CapturingLogger();
  const module = await Test.createTestingModule(metadata(redis, rateLimit)).setLogger(logger).compile();
  await module.init();
  const manager = module.get(RedisClientManager);
  if (!(await manager.get().waitUntilReady(10_000))) throw new Error('Redis not ready within 10 s');
  return {
    module,
    service: module.get(RateLimitService),
    manager,
    metrics: module.get(MetricsService),
    logger,
  };
}

export interface BootedApp extends Booted {
  app: INestApplication;
  base: string;
}

/** An HTTP app on 127.0.0.1 (random port) with the given controllers and the global guard. */
export async function bootApp(
  adapter: Adapter,
  redis: RedisClientModuleOptions,
  rateLimit: RateLimitModuleOptions,
  controllers: Type<unknown>[],
  providers: ModuleMetadata['providers'] = [],
): Promise<BootedApp> {
  const logger = new CapturingLogger();
  const module = await Test.createTestingModule(metadata(redis, rateLimit, controllers, providers))
    .setLogger(logger)
    .compile();
  const app = module.createNestApplication(
    adapter === 'fastify' ? new FastifyAdapter() : new ExpressAdapter(),
    {
      logger,
    },
  );
  await app.listen(0, '127.0.0.1');
  const manager = app.get(RedisClientManager);
  await manager.get().waitUntilReady(10_000);
  const { port } = app.getHttpServer().address() as { port: number };
  return {
    module,
    app,
    base: `http://127.0.0.1:${port}`,
    service: app.get(RateLimitService),
    manager,
    metrics: app.get(MetricsService),
    logger,
  };
}

/** Value of a counter (summed over children matching `labels`) in the app's metrics registry. */
export async function counterValue(
  metrics: MetricsService,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((n, v) => n + v.value, 0);
}

/** Keys in the Redis namespace of the rate limiter (SCAN; never KEYS). */
export async function scanKeys(
  redis: { scan(cursor: string, ...args: Array<string | number>): Promise<[string, string[]]> },
  match: string,
): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  for (let i = 0; i < 100_000; i++) {
    const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1_000);
    keys.push(...batch);
    cursor = next;
    if (cursor === '0') break;
  }
  return keys;
}
