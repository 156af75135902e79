import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthenticatedGuard } from './authenticated.guard';
import { SessionExceptionFilter } from './session-exception.filter';
import { SessionMiddleware } from './session.middleware';
import { SessionRequestHook } from './session-request-hook';
import { ConfigurableSessionModule } from './session.module-definition';
import { SessionService } from './session.service';

/**
 * Encrypted server-side sessions on the `@redwing/redis` client. Importing it runs `SessionMiddleware` on
 * every request (cookie → session, `request.user`, CSRF) from the HTTP adapter's request hook, before any Nest
 * middleware, and registers `SessionExceptionFilter` (503 + `Retry-After` while Redis is unavailable). Needs `RedisClientModule` in the app.
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
    SessionRequestHook,
    AuthenticatedGuard,
    { provide: APP_FILTER, useClass: SessionExceptionFilter },
  ],
  exports: [SessionService, AuthenticatedGuard],
})
export class SessionModule extends ConfigurableSessionModule implements NestModule {
  constructor(private readonly requestHook: SessionRequestHook) {
    super();
  }

  configure(consumer: MiddlewareConsumer): void {
    // Express and Fastify adapters: the session runs from the adapter's request hook (session-request-hook.ts).
    if (this.requestHook.installable) return;
    consumer.apply(SessionMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
