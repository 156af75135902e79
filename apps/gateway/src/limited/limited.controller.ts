import { Body, Controller, Get, HttpCode, Post, Req, UnauthorizedException, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitService } from '@redwing/rate-limit';
import { JsonBodyGuard } from '../http/json-body.guard';
import { DEMO_TOKEN_PREFIX, type DemoUser } from './demo-auth.middleware';
import { API_LIMIT, LOGIN_LIMIT, USER_LIMITS } from './limits';

interface DemoRequest {
  user?: DemoUser;
  raw?: { user?: DemoUser };
}

/** The password every demo user has. */
export const DEMO_PASSWORD = 'demo';

/** Rate-limited demo routes: a critical login, a general API route and a per-user route. */
@Controller('limited')
export class LimitedController {
  constructor(private readonly rateLimit: RateLimitService) {}

  /**
   * `POST /limited/login` `{ "user": "alice", "password": "demo" }` → `{ token }`, or 401. Limited per client
   * address by {@link LOGIN_LIMIT}; a success gives its attempt back, so only failures count. JSON only (415
   * otherwise): a form post skips the CORS preflight.
   */
  @Post('login')
  @HttpCode(200)
  @RateLimit(LOGIN_LIMIT)
  @UseGuards(JsonBodyGuard)
  async login(@Body() body: { user?: unknown; password?: unknown } | undefined, @Req() req: object) {
    const user =
      typeof body?.user === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(body.user) ? body.user : undefined;
    if (!user || body?.password !== DEMO_PASSWORD) {
      throw new UnauthorizedException('Unknown user or wrong password.');
    }
    await this.rateLimit.reward(this.rateLimit.identify(req), 1, { limits: LOGIN_LIMIT });
    return { token: `${DEMO_TOKEN_PREFIX}${user}` };
  }

  /** `GET /limited/api`: a general API route, {@link API_LIMIT} per client address. */
  @Get('api')
  @RateLimit(API_LIMIT)
  api() {
    return { ok: true, at: new Date().toISOString() };
  }

  /** `GET /limited/me` with `Authorization: Bearer <token>`: limited per user by {@link USER_LIMITS}. */
  @Get('me')
  @RateLimit(...USER_LIMITS)
  me(@Req() req: DemoRequest) {
    const user = req.user ?? req.raw?.user;
    if (!user)
      throw new UnauthorizedException(
        'Log in at POST /limited/login and send Authorization: Bearer <token>.',
      );
    return { user: user.id };
  }
}
