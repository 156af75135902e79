import { Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { RateLimitGuard } from '@redwing/rate-limit';
import { DemoAuthMiddleware } from './demo-auth.middleware';
import { LimitedController } from './limited.controller';

/**
 * The gateway's rate-limited demo routes, and the one global `RateLimitGuard` that enforces `@RateLimit()`
 * on every route of the app (undecorated routes are not limited: `limitAllRoutes: false`).
 */
@Module({
  controllers: [LimitedController],
  providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
})
export class LimitedModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(DemoAuthMiddleware).forRoutes(LimitedController);
  }
}
