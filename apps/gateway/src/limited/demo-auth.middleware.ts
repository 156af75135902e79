import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';

/** The user a demo token names. */
export interface DemoUser {
  id: string;
}

/** Token format of the demo login: `demo.<user id>`. Not security; it only shows where the user comes from. */
export const DEMO_TOKEN_PREFIX = 'demo.';

/**
 * Authenticates `Authorization: Bearer demo.<user>` and sets `request.user` (never refuses; the route
 * decides). A user already set by the session (`@redwing/session` resolves the cookie before any middleware)
 * wins over the token. Middleware runs before every guard, so the global rate-limit guard can count per user. On
 * Fastify, Nest middleware gets the raw Node request; the guard reads `request.raw.user` there.
 */
@Injectable()
export class DemoAuthMiddleware implements NestMiddleware {
  use(req: IncomingMessage & { user?: DemoUser }, _res: unknown, next: () => void): void {
    if (req.user !== undefined) return next();
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (token?.startsWith(DEMO_TOKEN_PREFIX)) {
      const id = token.slice(DEMO_TOKEN_PREFIX.length);
      if (/^[A-Za-z0-9_-]{1,64}$/.test(id)) req.user = { id };
    }
    next();
  }
}
