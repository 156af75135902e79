import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthenticatedGuard } from './authenticated.guard';
import { SessionExceptionFilter } from './session-exception.filter';
import { SessionMiddleware } from './session.middleware';
import { ConfigurableSessionModule } from './session.module-definition';
import { SessionService } from './session.service';

/**
 * Encrypted server-side sessions on the `@redwing/redis` client. Importing it applies `SessionMiddleware` to
 * every route (cookie → session, `request.user`, CSRF) and registers `SessionExceptionFilter` (503 +
 * `Retry-After` while Redis is unavailable). Needs `RedisClientModule` in the app.
 * @example
 * \@Module({
 *   imports: [
 *     RedisClientModule.forRoot({ url: process.env.REDIS_URL }),
 *     SessionModule.forRoot({ keys: [process.env.SESSION_KEY!] }),
 *   ],
 * })
 * export class AppModule {}
 */
@Module({
  providers: [
    SessionService,
    SessionMiddleware,
    AuthenticatedGuard,
    { provide: APP_FILTER, useClass: SessionExceptionFilter },
  ],
  exports: [SessionService, AuthenticatedGuard],
})
export class SessionModule extends ConfigurableSessionModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(SessionMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
