import type { DynamicModule, Type } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { RateLimit, RateLimitModule } from '@redwing/rate-limit';
import type { GatewayEnv } from '../config/gateway-env.schema';
import { LimitedModule } from '../limited/limited.module';
import { rateLimitOptionsFromEnv } from '../limited/rate-limit.env';

/**
 * Modules the rate-limit feature adds to the gateway (app.module.ts imports this list): `RateLimitModule`
 * (global, configured from `RATE_LIMIT_*`) and the demo routes, whose module registers the global guard.
 */
export const rateLimitFeature: Array<Type<unknown> | DynamicModule> = [
  RateLimitModule.forRootAsync({
    isGlobal: true,
    inject: [ConfigService],
    useFactory: (config: ConfigService<GatewayEnv, true>) =>
      rateLimitOptionsFromEnv(process.env, config.get('RATE_LIMIT_BOARDS', { infer: true })),
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
