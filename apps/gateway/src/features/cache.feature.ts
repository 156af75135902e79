import type { DynamicModule, Type } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { CacheModule, type CacheModuleOptions } from '@redwing/cache';
import { BoardsModule } from '../boards/boards.module';
import { CacheStatsModule } from '../cache-stats/cache-stats.module';

/** Cache settings the gateway reads from the environment (all optional, in ms unless noted). */
export const CACHE_ENV = {
  CACHE_TTL: { default: 60_000, min: 1, max: 86_400_000, what: 'default cache TTL, ms' },
  CACHE_BOARDS_TTL: {
    default: 30_000,
    min: 1,
    max: 86_400_000,
    what: 'TTL of GET /boards/:id and the list, ms',
  },
  CACHE_BOARDS_STALE_WHILE_REVALIDATE: {
    default: 30_000,
    min: 0,
    max: 86_400_000,
    what: 'how long a board may be served stale while one request refreshes it, ms',
  },
  CACHE_L1_MAX_ENTRIES: {
    default: 10_000,
    min: 1,
    max: 10_000_000,
    what: 'entries kept in process per profile',
  },
} as const;

type CacheEnvName = keyof typeof CACHE_ENV;

/**
 * Reads and validates the `CACHE_*` variables.
 * @throws Error naming every invalid variable and its allowed range
 */
export function cacheEnv(read: (name: string) => string | undefined): Record<CacheEnvName, number> {
  const out = {} as Record<CacheEnvName, number>;
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(CACHE_ENV) as Array<
    [CacheEnvName, (typeof CACHE_ENV)[CacheEnvName]]
  >) {
    const raw = read(name);
    if (raw === undefined || raw === '') {
      out[name] = spec.default;
      continue;
    }
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || n < spec.min || n > spec.max) {
      problems.push(
        `${name} must be an integer from ${spec.min} to ${spec.max} (${spec.what}); got "${raw.slice(0, 20)}"`,
      );
    } else out[name] = n;
  }
  if (problems.length) {
    throw new Error(`Invalid gateway cache configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return out;
}

/** The gateway's cache: a default profile and `kanban` (boards), with cross-instance single-flight. */
export function cacheOptionsFrom(config: ConfigService): CacheModuleOptions {
  const env = cacheEnv((name) => config.get<string>(name));
  const l1 = { maxEntries: env.CACHE_L1_MAX_ENTRIES };
  return {
    ttl: env.CACHE_TTL,
    l1,
    profiles: {
      kanban: {
        ttl: env.CACHE_BOARDS_TTL,
        staleWhileRevalidate: env.CACHE_BOARDS_STALE_WHILE_REVALIDATE,
        staleIfError: env.CACHE_BOARDS_STALE_WHILE_REVALIDATE,
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
