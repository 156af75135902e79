import type { DynamicModule, Type } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { CacheModule, type CacheModuleOptions } from '@redwing/cache';
import { BoardsModule } from '../boards/boards.module';
import { CacheStatsModule } from '../cache-stats/cache-stats.module';
import type { GatewayEnv } from '../config/gateway-env.schema';

/**
 * The gateway's cache: a default profile and `kanban` (boards), with cross-instance single-flight. Sizes come
 * from `CACHE_*` (validated by the gateway's Joi schema, which reports every bad variable by name at
 * start-up); the defaults below are the documented ones.
 */
export function cacheOptionsFrom(config: ConfigService<GatewayEnv, true>): CacheModuleOptions {
  const env = <K extends keyof GatewayEnv>(name: K): GatewayEnv[K] => config.get(name, { infer: true });
  const boardsStale = env('CACHE_BOARDS_STALE_WHILE_REVALIDATE') ?? 30_000;
  const l1 = { maxEntries: env('CACHE_L1_MAX_ENTRIES') ?? 10_000 };
  return {
    ttl: env('CACHE_TTL') ?? 60_000,
    l1,
    profiles: {
      kanban: {
        ttl: env('CACHE_BOARDS_TTL') ?? 30_000,
        staleWhileRevalidate: boardsStale,
        staleIfError: boardsStale,
        lock: true,
        l1,
      },
    },
  };
}

/**
 * Modules the cache feature adds to the gateway (app.module.ts imports this list): the cache itself (global),
 * `CacheInterceptor` registered globally with `GET /cache/stats`, and the boards routes.
 */
export const cacheFeature: Array<Type<unknown> | DynamicModule> = [
  CacheModule.forRootAsync({ isGlobal: true, inject: [ConfigService], useFactory: cacheOptionsFrom }),
  CacheStatsModule,
  BoardsModule,
];
