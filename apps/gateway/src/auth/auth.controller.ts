import {
  Body,
  Controller,
  Get,
  HttpCode,
  Logger,
  Post,
  Req,
  Res,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { RateLimit, RateLimitService } from '@redwing/rate-limit';
import {
  Authenticated,
  Session,
  SessionService,
  type SessionRecord,
  type SessionSummary,
} from '@redwing/session';
import { JsonBodyGuard } from '../http/json-body.guard';
import { LOGIN_PER_IP, LOGIN_PER_USER, loginUserFromContext, loginUserKey } from './auth.limits';
import { DemoUsersService } from './demo-users.service';

/** The user as the auth routes return it. */
export interface AuthUser {
  id: string;
  name: string;
}

const userOf = (id: string): AuthUser => ({ id, name: id });

/**
 * Login with server-side sessions (DESIGN §4): `POST /auth/login`, `GET /auth/me`, `POST /auth/logout`,
 * `POST /auth/logout-all`, `GET /auth/sessions`. The session cookie is set by `SessionService.login`; unsafe
 * requests with a session cookie need `X-CSRF-Token` (checked by the session middleware; login is exempt).
 */
@Controller('auth')
export class AuthController {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly sessions: SessionService,
    private readonly users: DemoUsersService,
    private readonly rateLimit: RateLimitService,
  ) {}

  /**
   * `{ "username", "password" }` → 200 `{ user, csrfToken }` and a new session cookie (always a new id); 401
   * on bad credentials; 503 + `Retry-After` while Redis is unavailable. Failed attempts are limited per
   * address and per user name. JSON only (415 otherwise): a form post skips the CORS preflight, so any page
   * could log a visitor in to an account of the attacker's (login CSRF).
   */
  @Post('login')
  @HttpCode(200)
  @RateLimit(LOGIN_PER_IP, { ...LOGIN_PER_USER, key: loginUserFromContext })
  @UseGuards(JsonBodyGuard)
  async login(
    @Body() body: { username?: unknown; password?: unknown } | undefined,
    @Req() req: object,
    @Res({ passthrough: true }) res: object,
  ): Promise<{ user: AuthUser; csrfToken: string }> {
    const username = typeof body?.username === 'string' ? body.username : '';
    const password = typeof body?.password === 'string' ? body.password : '';
    const ok =
      username.length <= 64 && password.length <= 256 && (await this.users.verify(username, password));
    if (!ok) {
      throw new UnauthorizedException({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'Unknown user or wrong password.',
      });
    }
    const { csrfToken } = await this.sessions.login(req as never, res as never, { userId: username });
    await this.forgiveAttempt(req, username);
    return { user: userOf(username), csrfToken };
  }

  /** 200 `{ user, csrfToken }` with a logged-in session, else 401. */
  @Get('me')
  @Authenticated()
  me(@Session() session: SessionRecord): { user: AuthUser; csrfToken: string } {
    return { user: userOf(session.userId!), csrfToken: this.sessions.csrfToken(session) };
  }

  /** Ends this session and clears the cookie: 204 (also without a session). */
  @Post('logout')
  @HttpCode(204)
  async logout(@Req() req: object, @Res({ passthrough: true }) res: object): Promise<void> {
    await this.sessions.logout(req as never, res as never);
  }

  /** Ends every session of this user on every instance (their live sockets close too): 204. */
  @Post('logout-all')
  @HttpCode(204)
  @Authenticated()
  async logoutAll(@Req() req: object, @Res({ passthrough: true }) res: object): Promise<void> {
    await this.sessions.logout(req as never, res as never, { everywhere: true });
  }

  /** This user's live sessions, the current one marked. */
  @Get('sessions')
  @Authenticated()
  async list(
    @Session() session: SessionRecord,
  ): Promise<{ sessions: Array<SessionSummary & { current: boolean }> }> {
    const all = await this.sessions.listForUser(session.userId!);
    return { sessions: all.map((s) => ({ ...s, current: s.ref === session.ref })) };
  }

  /** A successful login gives its points back, so only failures are limited. Best effort. */
  private async forgiveAttempt(req: object, username: string): Promise<void> {
    try {
      await Promise.all([
        this.rateLimit.reward(this.rateLimit.identify(req), 1, { limits: LOGIN_PER_IP }),
        this.rateLimit.reward(`key:${loginUserKey(username)}`, 1, { limits: LOGIN_PER_USER }),
      ]);
    } catch (err) {
      this.logger.debug(`login attempt not given back: ${err instanceof Error ? err.name : 'error'}`);
    }
  }
}
