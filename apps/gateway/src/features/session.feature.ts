import { Logger, type DynamicModule, type Type } from '@nestjs/common';
import { SessionModule } from '@redwing/session';
import { sessionOptionsFrom } from '../auth/auth.config';
import { AuthModule } from '../auth/auth.module';

/**
 * Modules the session feature adds to the gateway (app.module.ts imports this list): `SessionModule` (global;
 * cookie middleware on every route, `request.user` from the session, CSRF, 503 while Redis is down) configured
 * from `SESSION_*`, and the `/auth/*` routes with demo users from `AUTH_DEMO_USERS`.
 */
export const sessionFeature: Array<Type<unknown> | DynamicModule> = [
  SessionModule.forRootAsync({
    isGlobal: true,
    useFactory: () => {
      const { options, source } = sessionOptionsFrom(process.env);
      if (source !== 'SESSION_KEYS') {
        new Logger('Auth').warn(
          `SESSION_KEYS is not set: using a ${source} session key` +
            (source === 'random per process'
              ? ' (sessions end at a restart and are not shared between instances)'
              : ' (known to everyone; development only)'),
        );
      }
      return options;
    },
  }),
  AuthModule,
];
