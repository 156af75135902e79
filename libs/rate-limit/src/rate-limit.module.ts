import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { LimitResolver } from './limit-resolver';
import { resolveRateLimitConfig } from './rate-limit.config';
import { RATE_LIMIT_CONFIG } from './rate-limit.constants';
import { RateLimitExplorer } from './rate-limit.explorer';
import { RateLimitGuard } from './rate-limit.guard';
import { ConfigurableRateLimitModule, RATE_LIMIT_MODULE_OPTIONS } from './rate-limit.module-definition';
import { RateLimitService } from './rate-limit.service';
import type { RateLimitModuleOptions } from './rate-limit.interfaces';

/**
 * Rate limiting on the `@redwing/redis` client: `RateLimitService` for any code, `@RateLimit()` /
 * `@SkipRateLimit()` for routes, enforced by `RateLimitGuard` registered globally (one line):
 * `{ provide: APP_GUARD, useClass: RateLimitGuard }`. Needs `RedisClientModule` in the app.
 * @example
 * \@Module({
 *   imports: [RedisClientModule.forRoot(), RateLimitModule.forRoot({ points: 100, duration: 60_000 })],
 *   providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
 * })
 * export class AppModule {}
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: RATE_LIMIT_CONFIG,
      useFactory: (options: RateLimitModuleOptions) => resolveRateLimitConfig(options ?? {}),
      inject: [RATE_LIMIT_MODULE_OPTIONS],
    },
    LimitResolver,
    RateLimitExplorer,
    RateLimitService,
    RateLimitGuard,
  ],
  // The explorer and the resolver are exported for the app's APP_GUARD instance of RateLimitGuard (they are
  // not part of the package's API).
  exports: [RateLimitService, RateLimitGuard, RateLimitExplorer, LimitResolver],
})
export class RateLimitModule extends ConfigurableRateLimitModule {}
