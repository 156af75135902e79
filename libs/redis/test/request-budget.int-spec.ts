import {
  Controller,
  Injectable,
  Module,
  Post,
  Body,
  Req,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type INestApplication,
  type MiddlewareConsumer,
  type NestInterceptor,
  type NestMiddleware,
  type NestModule,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { request as httpRequest } from 'node:http';
import { from, switchMap, type Observable } from 'rxjs';
import {
  isRedisBudgetSpent,
  RedisClientManager,
  RedisClientModule,
  RedisCommandTimeoutError,
  RedisConfigError,
  resolveRedisConfig,
  RedisConnectionLostError,
  RedisUnavailableError,
  runWithRedisBudget,
  type ManagedRedisClient,
} from '@redwing/redis';
import { RedisServer } from '../../../test/harness';
import { bootRedisModule, fastRedisOptions, timed, waitFor } from './helpers';

// RELIABILITY.md, "hung Redis, whole request": no request waits longer than command timeout + 100 ms in
// total. A request runs in a budget scope: after one of its commands timed out (or lost its connection),
// the rest are refused at once with RedisUnavailableError('request-budget').

const TIMEOUT = 300;
/** The figure: command timeout + 100 ms. */
const FIGURE = TIMEOUT + 100;

let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server.stop();
});

afterEach(() => {
  if (server.isPaused) server.resume();
});

/** What a pipeline or MULTI ended with: its first command's error, as {@link outcome} names it. */
async function execOutcome(
  p: Promise<Array<[Error | null, unknown]> | null>,
): Promise<{ what: string; ms: number }> {
  return outcome(
    p.then((replies) => {
      const failed = replies?.find(([err]) => err !== null);
      if (failed) throw failed[0];
      return replies;
    }),
  );
}

/** What a command ended with: 'ok', or the error's name and reason. */
async function outcome(p: Promise<unknown>): Promise<{ what: string; ms: number }> {
  const r = await timed(p);
  if (r.ok) return { what: 'ok', ms: r.ms };
  const reason = (r.error as { reason?: string }).reason;
  return { what: reason ? `${r.error!.name}:${reason}` : r.error!.name, ms: r.ms };
}

describe('requestBudget option', () => {
  it('is on by default, can be turned off, and must be a boolean', () => {
    expect(resolveRedisConfig({ useEnv: false }).requestBudget).toBe(true);
    expect(resolveRedisConfig({ useEnv: false, requestBudget: false }).requestBudget).toBe(false);
    expect(() => resolveRedisConfig({ useEnv: false, requestBudget: 'no' as never })).toThrow(
      RedisConfigError,
    );
  });
});

describe('request budget without HTTP (runWithRedisBudget)', () => {
  let manager: RedisClientManager;
  let client: ManagedRedisClient;
  let close: () => Promise<void>;

  beforeAll(async () => {
    // A breaker that stays closed: every wait here is the budget's doing, not the breaker's.
    const booted = await bootRedisModule({
      url: server.url(),
      commandTimeout: TIMEOUT,
      breaker: { enabled: false },
      healthCheck: { interval: 0 },
    });
    manager = booted.manager;
    client = manager.get();
    close = () => booted.module.close();
    await client.waitUntilReady(5_000);
  });

  afterAll(async () => {
    await close();
  });

  it('after one timeout, later commands of the scope are refused at once; outside a scope nothing changes', async () => {
    server.pause();
    const seen = await runWithRedisBudget(async () => {
      const first = await outcome(client.command.get('k'));
      const spent = isRedisBudgetSpent();
      const second = await outcome(client.command.get('k'));
      const pipeline = await execOutcome(client.command.pipeline().get('a').set('b', '1').exec());
      const multi = await execOutcome(client.command.multi().incr('c').exec());
      const pooled = await outcome(client.withConnection((c) => c.get('k')));
      // The health PING is never in a request's budget: it is sent and times out on its own.
      const health = await timed(client.checkHealth());
      return { first, spent, second, pipeline, multi, pooled, health };
    });
    expect(seen.first.what).toBe(RedisCommandTimeoutError.name);
    expect(seen.spent).toBe(true);
    for (const refused of [seen.second, seen.pipeline, seen.multi, seen.pooled]) {
      expect(refused.what).toBe(`${RedisUnavailableError.name}:request-budget`);
      expect(refused.ms).toBeLessThan(50);
    }
    expect(seen.health.value).toBe(false);
    expect(seen.health.ms).toBeGreaterThanOrEqual(TIMEOUT - 20);

    // No scope: each command waits its own timeout, as before.
    expect(isRedisBudgetSpent()).toBe(false);
    const a = await outcome(client.command.get('k'));
    const b = await outcome(client.command.get('k'));
    expect([a.what, b.what]).toEqual([RedisCommandTimeoutError.name, RedisCommandTimeoutError.name]);
  });

  it('a command sent while an earlier one waits ends with it, not at its own later deadline', async () => {
    server.pause();
    const seen = await runWithRedisBudget(async () => {
      let lateSettled = false;
      const early = outcome(client.command.get('early'));
      await new Promise((r) => setTimeout(r, TIMEOUT / 2));
      const late = outcome(client.command.get('late')).finally(() => (lateSettled = true));
      const first = await early;
      // One macrotask after the first timeout: the late command (its own deadline is TIMEOUT / 2 away) is over.
      await new Promise((r) => setImmediate(r));
      return { first, settledWithFirst: lateSettled, late: await late };
    });
    expect(seen.first.what).toBe(RedisCommandTimeoutError.name);
    expect(seen.settledWithFirst).toBe(true);
    expect(seen.late.what).toBe(RedisCommandTimeoutError.name);
    // Outside that scope the connection's commands keep their own deadlines.
    const alone = await outcome(client.command.get('alone'));
    expect(alone.what).toBe(RedisCommandTimeoutError.name);
  });

  it('concurrent commands in flight end together; the scope is one wait in total', async () => {
    server.pause();
    const started = performance.now();
    const seen = await runWithRedisBudget(async () => {
      const all = await Promise.all([1, 2, 3].map((i) => outcome(client.command.get(`k${i}`))));
      const after = await outcome(client.command.get('k'));
      return { all, after };
    });
    const total = performance.now() - started;
    expect(seen.all.map((o) => o.what)).toEqual(Array(3).fill(RedisCommandTimeoutError.name));
    expect(seen.after.what).toBe(`${RedisUnavailableError.name}:request-budget`);
    expect(total).toBeLessThanOrEqual(FIGURE);
  });

  it('a lost connection spends the scope too; scopes are independent and close with their function', async () => {
    server.pause();
    const other = runWithRedisBudget(() => outcome(client.command.get('other')));
    const seen = await runWithRedisBudget(async () => {
      const pending = outcome(client.command.get('k'));
      // In flight when its connection closes (the socket dies; ioredis reconnects).
      (client.command as unknown as { stream: { destroy(): void } }).stream.destroy();
      const lost = await pending;
      const after = await outcome(client.command.get('k'));
      return { lost, after };
    });
    expect(seen.lost.what).toBe(RedisConnectionLostError.name);
    expect(seen.after.what).toBe(`${RedisUnavailableError.name}:request-budget`);
    // The other scope's command was on the same connection: lost too, but its scope was its own.
    expect((await other).what).toBe(RedisConnectionLostError.name);
    server.resume();
    await client.waitUntilReady(5_000);

    // A timer a closed scope left behind is not limited by it.
    let late: Promise<{ what: string; ms: number }> | undefined;
    server.pause();
    await runWithRedisBudget(async () => {
      await outcome(client.command.get('k'));
      setTimeout(() => {
        late = outcome(client.command.get('k'));
      }, 20);
    });
    await waitFor('the late command', 2_000, () => late !== undefined);
    expect((await late!).what).toBe(RedisCommandTimeoutError.name);
  });
});

// -------------------------------------------------------------------------------------------------
// HTTP: one scope per request, from middleware through guard, interceptor, body parsing and handler.

/** Every stage makes one Redis call, catches what it throws and records it on the request. */
type Trace = string[];
const traceOf = (req: unknown): Trace => {
  const r = ((req as { raw?: object }).raw ?? req) as { redisTrace?: Trace };
  r.redisTrace ??= [];
  return r.redisTrace;
};

let stageClient: ManagedRedisClient;

async function stage(trace: Trace, name: string): Promise<void> {
  const o = await outcome(stageClient.command.get(`stage:${name}`));
  trace.push(`${name}=${o.what}`);
}

@Injectable()
class StageMiddleware implements NestMiddleware {
  use(req: unknown, _res: unknown, next: () => void): void {
    void stage(traceOf(req), 'middleware').then(() => next());
  }
}

@Injectable()
class StageGuard implements CanActivate {
  async canActivate(context: import('@nestjs/common').ExecutionContext): Promise<boolean> {
    await stage(traceOf(context.switchToHttp().getRequest()), 'guard');
    return true;
  }
}

@Injectable()
class StageInterceptor implements NestInterceptor {
  intercept(context: import('@nestjs/common').ExecutionContext, next: CallHandler): Observable<unknown> {
    const trace = traceOf(context.switchToHttp().getRequest());
    return from(stage(trace, 'interceptor')).pipe(switchMap(() => next.handle()));
  }
}

@Controller('budget')
class StageController {
  @Post()
  @UseGuards(StageGuard)
  @UseInterceptors(StageInterceptor)
  async run(@Body() body: { n?: number }, @Req() req: unknown): Promise<{ n?: number; trace: Trace }> {
    // After body parsing: still in the request's scope.
    await stage(traceOf(req), 'handler');
    return { n: body?.n, trace: traceOf(req) };
  }
}

function buildApp(adapter: 'fastify' | 'express', requestBudget: boolean): Promise<INestApplication> {
  @Module({
    imports: [
      RedisClientModule.forRoot({
        ...fastRedisOptions({ commandTimeout: TIMEOUT }),
        url: server.url(),
        breaker: { enabled: false },
        healthCheck: { interval: 0 },
        requestBudget,
      }),
    ],
    controllers: [StageController],
  })
  class BudgetAppModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer.apply(StageMiddleware).forRoutes(StageController);
    }
  }
  return NestFactory.create<INestApplication>(
    BudgetAppModule,
    adapter === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
    { logger: false, abortOnError: false },
  );
}

/** POST a JSON body in two writes 30 ms apart (body parsing resumes from later socket events). */
function postInTwoParts(base: string): Promise<{ status: number; ms: number; trace: Trace }> {
  const url = new URL('/budget', base);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': '8' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const ms = performance.now() - started;
          const trace = (JSON.parse(text) as { trace?: Trace }).trace ?? [];
          resolve({ status: res.statusCode ?? 0, ms, trace });
        });
      },
    );
    req.on('error', reject);
    req.write('{"n":');
    setTimeout(() => req.end('42}'), 30);
  });
}

describe.each(['fastify', 'express'] as const)('request budget over HTTP (%s)', (adapter) => {
  let app: INestApplication;
  let base: string;

  async function start(requestBudget: boolean): Promise<void> {
    app = await buildApp(adapter, requestBudget);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as { port: number };
    base = `http://127.0.0.1:${port}`;
    stageClient = app.get(RedisClientManager).get();
    await stageClient.waitUntilReady(5_000);
  }

  afterEach(async () => {
    if (server.isPaused) server.resume();
    await app?.close();
  });

  it(`hung Redis: middleware, guard, interceptor and handler of a POST wait ≤ ${FIGURE} ms in total`, async () => {
    await start(true);
    const healthy = await postInTwoParts(base);
    expect(healthy.status).toBe(201);
    expect(healthy.trace).toEqual(['middleware=ok', 'guard=ok', 'interceptor=ok', 'handler=ok']);
    server.pause();
    const refused = `${RedisUnavailableError.name}:request-budget`;
    for (let i = 0; i < 3; i++) {
      const r = await postInTwoParts(base);
      expect(r.status).toBe(201);
      expect(r.ms).toBeLessThanOrEqual(FIGURE);
      // One wait (the middleware's); every later stage, the handler after body parsing included, refused.
      expect(r.trace).toEqual([
        `middleware=${RedisCommandTimeoutError.name}`,
        `guard=${refused}`,
        `interceptor=${refused}`,
        `handler=${refused}`,
      ]);
    }
  });

  it('requestBudget: false restores one wait per command (what the figure rules out)', async () => {
    await start(false);
    server.pause();
    const r = await postInTwoParts(base);
    expect(r.status).toBe(201);
    expect(r.trace).toEqual(
      Array(4)
        .fill(0)
        .map(
          (_, i) =>
            `${['middleware', 'guard', 'interceptor', 'handler'][i]}=${RedisCommandTimeoutError.name}`,
        ),
    );
    expect(r.ms).toBeGreaterThanOrEqual(4 * TIMEOUT - 50);
  });
});
