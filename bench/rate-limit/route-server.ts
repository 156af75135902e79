// Child process of bench/rate-limit-route.bench.ts: three Nest + Fastify apps serving the same trivial JSON
// route, so the load generator (autocannon, in the parent) never shares this event loop:
//   plain      no guard at all
//   ours       @RateLimit (fixed window per client address, in Redis, counting: 'leased') through the global
//              RateLimitGuard, IETF RateLimit headers on, metrics registry present, default RedisClientModule
//              options
//   oursExact  the same with counting: 'exact' (one Redis round trip per request)
//   oursPipelined  oursExact with RedisClientModule redisOptions { enableAutoPipelining: true }
//   throttler  @nestjs/throttler's global ThrottlerGuard, one 60 s throttler, default in-memory storage
// Limits are never reached. Talks to the parent over IPC through bench/lib/server.ts.
import 'reflect-metadata';
import { Controller, Get, Module, type Type } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { RateLimit, RateLimitGuard, RateLimitModule } from '@redwing/rate-limit';
import { MetricsRegistryModule } from '../lib/metrics-registry';
import { benchRedisModule, readyClient } from '../lib/redis-module';
import { listen, ready, serve, serverMain } from '../lib/server';

const LIMIT = 1_000_000_000;
const WINDOW = 60_000;

@Controller('r')
class PlainController {
  @Get()
  get() {
    return { ok: true };
  }
}

@Controller('r')
class LeasedController {
  @Get()
  @RateLimit({ points: LIMIT, duration: WINDOW, counting: 'leased' })
  get() {
    return { ok: true };
  }
}

@Controller('r')
class ExactController {
  @Get()
  @RateLimit({ points: LIMIT, duration: WINDOW, counting: 'exact' })
  get() {
    return { ok: true };
  }
}

@Module({ controllers: [PlainController] })
class PlainModule {}

function oursModule(redisUrl: string, autoPipelining: boolean, controller: Type<unknown>): Type<unknown> {
  @Module({
    imports: [
      benchRedisModule(redisUrl, { redisOptions: { enableAutoPipelining: autoPipelining } }),
      MetricsRegistryModule,
      RateLimitModule.forRoot({ limitAllRoutes: false }),
    ],
    controllers: [controller],
    providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
  })
  class OursModule {}
  return OursModule;
}

@Module({
  imports: [ThrottlerModule.forRoot([{ ttl: WINDOW, limit: LIMIT }])],
  controllers: [PlainController],
  providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
})
class ThrottlerAppModule {}

/** Creates the app of `module` and listens on a free loopback port. */
async function start(module: Type<unknown>) {
  const app = await NestFactory.create(module, new FastifyAdapter(), { logger: ['error', 'warn'] });
  return { app, port: await listen(app) };
}

serverMain('route-server', async () => {
  const redisUrl = process.env.BENCH_REDIS_URL;
  if (!redisUrl || !process.send) throw new Error('route-server: run me through rate-limit-route.bench.ts');
  const plain = await start(PlainModule);
  const ours = await start(oursModule(redisUrl, false, LeasedController));
  const oursExact = await start(oursModule(redisUrl, false, ExactController));
  const oursPipelined = await start(oursModule(redisUrl, true, ExactController));
  const throttler = await start(ThrottlerAppModule);
  for (const o of [ours, oursExact, oursPipelined]) await readyClient(o.app);
  serve([plain.app, ours.app, oursExact.app, oursPipelined.app, throttler.app]);
  ready({
    plain: plain.port,
    ours: ours.port,
    oursExact: oursExact.port,
    oursPipelined: oursPipelined.port,
    throttler: throttler.port,
  });
});
