import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { AuthController } from './auth.controller';
import { DemoUsersService } from './demo-users.service';
import { SessionUserMiddleware } from './session-user.middleware';

/** The gateway's login routes over `@redwing/session` (imported globally by the session feature). */
@Module({
  controllers: [AuthController],
  providers: [DemoUsersService, SessionUserMiddleware],
})
export class AuthModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(SessionUserMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
