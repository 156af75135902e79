import { ForbiddenException, Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SAFE_METHODS } from './session.constants';
import { SessionService } from './session.service';

/**
 * Loads the session named by the request's cookie (never by the URL or body), leaves it for the guard and the
 * decorators, sets `request.user = { id }` for a session with a user, clears a cookie that names no live
 * session, and enforces CSRF: an unsafe request (not GET/HEAD/OPTIONS/TRACE) that carries a live session cookie
 * must send the session's token in the CSRF header (`X-CSRF-Token`), else 403 (paths in `csrf.exempt`
 * excepted). Requests without a cookie are
 * untouched. While Redis is unavailable the request continues anonymously; anything that needs its session
 * answers 503. Works on Express and Fastify (Nest passes the Node request and response to middleware).
 * `SessionModule` applies it to every route.
 */
@Injectable()
export class SessionMiddleware implements NestMiddleware {
  constructor(private readonly sessions: SessionService) {}

  async use(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): Promise<void> {
    const state = await this.sessions.resolveRequest(req, res);
    const csrf = this.sessions.config.csrf;
    if (
      state.status === 'ok' &&
      csrf.enabled &&
      !SAFE_METHODS.has(req.method ?? 'GET') &&
      !(csrf.exempt.size > 0 && csrf.exempt.has(pathOf(req)))
    ) {
      if (!this.sessions.verifyCsrf(state.id!, req.headers[csrf.header])) {
        throw new ForbiddenException({
          statusCode: 403,
          error: 'Forbidden',
          message: `Missing or invalid CSRF token: send the session's csrfToken in the ${csrf.header} header.`,
        });
      }
    }
    next();
  }
}

/** The path of a request URL, without the query string. */
function pathOf(req: IncomingMessage & { originalUrl?: string }): string {
  const url = req.originalUrl ?? req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
