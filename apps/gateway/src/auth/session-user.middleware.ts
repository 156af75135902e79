import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { SessionService } from '@redwing/session';

/**
 * Makes the session's user win over the demo bearer token (`DemoAuthMiddleware` of the rate-limit demo).
 * `SessionModule` is global, and Nest runs global modules' middleware first, so the demo middleware, which
 * runs later on `/limited/*`, would overwrite `request.user`; this one runs after both and restores the user
 * of the session (it reads what the session middleware already loaded: no Redis call).
 */
@Injectable()
export class SessionUserMiddleware implements NestMiddleware {
  constructor(private readonly sessions: SessionService) {}

  async use(req: IncomingMessage & { user?: unknown }, _res: unknown, next: () => void): Promise<void> {
    const state = await this.sessions.resolveRequest(req);
    const userId = state.session?.userId;
    if (userId !== undefined && userId !== null) req.user = { id: userId };
    next();
  }
}
