import { Module } from '@nestjs/common';
import { AuthController } from './auth.controller';
import { DemoUsersService } from './demo-users.service';

/** The gateway's login routes over `@redwing/session` (imported globally by the session feature). */
@Module({
  controllers: [AuthController],
  providers: [DemoUsersService],
})
export class AuthModule {}
