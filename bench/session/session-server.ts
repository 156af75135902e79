// Child process of bench/session.bench.ts: two Nest 12 + Express apps serving the same authenticated route
// `GET /me` (load the session named by the cookie, answer the user id), so autocannon in the parent never
// shares their event loop:
//   ours  @redwing/session (SessionModule middleware, @Authenticated() + @CurrentUser(), AES-256-GCM at
//         rest, default touchInterval so reads do not write), on RedisClientModule (ioredis)
//   peer  express-session + connect-redis on node-redis, defaults (resave false, saveUninitialized false,
//         a cookie maxAge, so the store is touched — EXPIRE — on every request, as its docs describe)
// Each app logs one user in at start-up; `cookies` answers the cookie of each. IPC via bench/lib/server.ts.
import 'reflect-metadata';
import { Controller, Get, HttpCode, Module, Post, Req, Res, UnauthorizedException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import {
  Authenticated,
  CurrentUser,
  SessionModule,
  SessionService,
  type SessionUser,
} from '@redwing/session';
import session from 'express-session';
import { createClient } from 'redis';
import { benchRedisModule, readyClient } from '../lib/redis-module';
import { listen, ready, serve, serverMain } from '../lib/server';

const SECRET = 'bench-session-key-0123456789abcdefghijklmnopqrstuvwxyz';
const ABSOLUTE = 43_200_000;

@Controller()
class OursController {
  constructor(private readonly sessions: SessionService) {}

  @Post('login')
  @HttpCode(200)
  async login(@Req() req: object, @Res({ passthrough: true }) res: object) {
    await this.sessions.login(req as never, res as never, { userId: 'alice', data: { theme: 'dark' } });
    return { ok: true };
  }

  @Get('me')
  @Authenticated()
  me(@CurrentUser() user: SessionUser) {
    return { user: user.id };
  }
}

interface PeerRequest {
  session: session.Session & { userId?: string; theme?: string };
}

@Controller()
class PeerController {
  @Post('login')
  @HttpCode(200)
  login(@Req() req: PeerRequest) {
    req.session.userId = 'alice';
    req.session.theme = 'dark';
    return { ok: true };
  }

  @Get('me')
  me(@Req() req: PeerRequest) {
    if (!req.session.userId) throw new UnauthorizedException();
    return { user: req.session.userId };
  }
}

/** The cookie pair (`name=value`) a POST /login sets. */
async function loginCookie(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST' });
  const set = res.headers.getSetCookie()[0];
  if (res.status !== 200 || !set) throw new Error(`login on ${port} answered ${res.status} without a cookie`);
  return set.split(';')[0];
}

// connect-redis is ESM-only (exports "import" only); a real dynamic import, not swc's require().
const importEsm = new Function('s', 'return import(s)') as (
  s: string,
) => Promise<{ RedisStore: new (o: object) => session.Store }>;

serverMain('session-server', async () => {
  const redisUrl = process.env.BENCH_REDIS_URL;
  if (!redisUrl || !process.send) throw new Error('session-server: run me through session.bench.ts');

  @Module({
    imports: [benchRedisModule(redisUrl), SessionModule.forRoot({ keys: [SECRET], useEnv: false })],
    controllers: [OursController],
  })
  class OursModule {}
  const ours = await NestFactory.create(OursModule, new ExpressAdapter(), { logger: ['error'] });
  const oursPort = await listen(ours);
  await readyClient(ours);

  const { RedisStore } = await importEsm('connect-redis');
  const client = createClient({ url: redisUrl });
  await client.connect();
  @Module({ controllers: [PeerController] })
  class PeerModule {}
  const peer = await NestFactory.create(PeerModule, new ExpressAdapter(), { logger: ['error'] });
  peer.use(
    session({
      store: new RedisStore({ client }),
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: ABSOLUTE },
    }),
  );
  const peerPort = await listen(peer);

  const cookies = { ours: await loginCookie(oursPort), peer: await loginCookie(peerPort) };
  serve([ours, peer], { cookies: () => cookies });
  ready({ ours: oursPort, peer: peerPort });
});
