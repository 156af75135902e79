import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RateLimitExplorer } from './rate-limit.explorer';
import { RateLimitGuard } from './rate-limit.guard';
import { ConfigurableRateLimitModule } from './rate-limit.module-definition';
import { RateLimitService } from './rate-limit.service';

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
  providers: [RateLimitService, RateLimitGuard, RateLimitExplorer],
  exports: [RateLimitService, RateLimitGuard],
})
export class RateLimitModule extends ConfigurableRateLimitModule {}
