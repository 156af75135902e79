import { Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { SESSION_STATE } from './session.constants';
import type { RequestSessionState } from './session.interfaces';

/** The state `SessionMiddleware` left on an HTTP request. @internal */
export function requestState(ctx: ExecutionContext): RequestSessionState {
  const req = ctx.switchToHttp().getRequest<{ raw?: IncomingMessage } & IncomingMessage>();
  const raw = (req.raw ?? req) as IncomingMessage & { [SESSION_STATE]?: RequestSessionState };
  const state = raw[SESSION_STATE];
  if (!state) {
    throw new Error(
      'No session state on this request: SessionMiddleware did not run. Import SessionModule in the app (it runs ' +
        'the middleware on every request) or apply SessionMiddleware to this route.',
    );
  }
  return state;
}

/**
 * Lets a request through when its session has a user; 401 JSON otherwise; `SessionUnavailableError` (503 +
 * `Retry-After`) while the store is unavailable. Applied by `@Authenticated()`; HTTP only.
 */
@Injectable()
export class AuthenticatedGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    if (ctx.getType() !== 'http') return true;
    const state = requestState(ctx);
    if (state.status === 'unavailable') throw state.error!;
    if (state.session?.userId === undefined || state.session.userId === null) {
      throw new UnauthorizedException({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'Log in first: this route needs a session (POST /auth/login).',
      });
    }
    return true;
  }
}
