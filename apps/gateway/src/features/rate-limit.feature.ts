import type { DynamicModule, Type } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { RateLimit, RateLimitModule, type RateLimitModuleOptions } from '@redwing/rate-limit';
import type { GatewayEnv } from '../config/gateway-env.schema';
import { LimitedModule } from '../limited/limited.module';

/**
 * The gateway's rate-limit options from its environment (`RATE_LIMIT_*`, validated by the gateway's Joi
 * schema, which reports every bad variable by name at start-up); unset variables keep the lib's defaults.
 */
export function rateLimitOptionsFrom(config: ConfigService<GatewayEnv, true>): RateLimitModuleOptions {
  const env = <K extends keyof GatewayEnv>(name: K): GatewayEnv[K] => config.get(name, { infer: true });
  return {
    // Only decorated routes: health checks, /metrics and the other features' routes stay unlimited.
    limitAllRoutes: false,
    trustProxy: env('RATE_LIMIT_TRUST_PROXY_HOPS') ?? 0,
    instances: env('RATE_LIMIT_INSTANCES') ?? 1,
    ipv6Prefix: env('RATE_LIMIT_IPV6_PREFIX') ?? 56,
    shadow: env('RATE_LIMIT_SHADOW') ?? false,
    legacyHeaders: env('RATE_LIMIT_LEGACY_HEADERS') ?? false,
    policies: { boards: { points: env('RATE_LIMIT_BOARDS'), duration: 60_000, key: 'ip' } },
  };
}

/**
 * Modules the rate-limit feature adds to the gateway (app.module.ts imports this list): `RateLimitModule`
 * (global, configured from `RATE_LIMIT_*`) and the demo routes, whose module registers the global guard.
 */
export const rateLimitFeature: Array<Type<unknown> | DynamicModule> = [
  RateLimitModule.forRootAsync({
    isGlobal: true,
    inject: [ConfigService],
    useFactory: rateLimitOptionsFrom,
  }),
  LimitedModule,
];

/**
 * The `GET /boards` limit of DESIGN §4: `RATE_LIMIT_BOARDS` requests per minute per client (default 120).
 * @example
 * \@Get()
 * \@boardsRateLimit()
 * list() {}
 */
export const boardsRateLimit = (): MethodDecorator & ClassDecorator => RateLimit('boards');
