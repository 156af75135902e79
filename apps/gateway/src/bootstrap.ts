import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { AppModule } from './app.module';
import { loadGatewayEnv, logLevelsFrom, type HttpAdapterName } from './config/gateway-env.schema';
import { LiveIoAdapter, parseOrigins } from './live/live-io.adapter';
import { LiveGateway } from './live/live.gateway';

/** Options of {@link createApp}. */
export interface CreateAppOptions {
  /** HTTP platform. @default `HTTP_ADAPTER`, else 'fastify' */
  adapter?: HttpAdapterName;
  /**
   * Variables laid over `process.env` before the app is built (`undefined` removes one). They are written to
   * `process.env` because `@nestjs/config` and `@redwing/redis` read it, so apps created one after another
   * in the same process each see the variables they were given.
   */
  env?: Record<string, string | undefined>;
  /** Nest logger. @default the levels `LOG_LEVEL` enables */
  logger?: LoggerService | LogLevel[] | false;
}

/**
 * Creates the gateway (not yet listening), shared by `main.ts` and the e2e tests. Call `listen()` on it;
 * `main.ts` also enables shutdown hooks.
 * @throws GatewayConfigError when the environment is invalid (the message names every bad variable).
 */
export async function createApp(options: CreateAppOptions = {}): Promise<INestApplication> {
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const env = loadGatewayEnv(process.env);
  const adapterName = options.adapter ?? env.HTTP_ADAPTER;
  const adapter = adapterName === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  const module = await AppModule.forRoot();
  const app = await NestFactory.create<INestApplication>(module, adapter, {
    logger: options.logger ?? logLevelsFrom(env.LOG_LEVEL),
    // Throw instead of process.abort(): main.ts prints the reason and exits with code 1.
    abortOnError: false,
  });
  // socket.io for the /live endpoint, on the same HTTP server, with its origin allowlist and payload limit.
  app.useWebSocketAdapter(
    new LiveIoAdapter(app, {
      allowedOrigins: parseOrigins(env.LIVE_ALLOWED_ORIGINS),
      maxPayload: env.LIVE_MAX_PAYLOAD ?? 16_384,
      onRefused: (reason) => app.get(LiveGateway, { strict: false }).metrics.drop(reason),
    }),
  );
  if (adapter instanceof FastifyAdapter) answerRefusedBodiesAfterReading(adapter.getInstance());
  return app;
}

/** Most bytes of a refused (413) body the gateway reads and discards before it answers, in bytes. */
const REFUSED_BODY_DRAIN_LIMIT = 64 * 1024 * 1024;
/** Longest the gateway waits for the rest of a refused body before it answers anyway, in ms. */
const REFUSED_BODY_DRAIN_TIMEOUT = 30_000;

/**
 * Fastify answers a body over its limit with 413 and closes the connection at once, while the client is
 * still sending: the client then sees a reset instead of the 413 (1 try in 10 for a 10 MB body). Like
 * Express (body-parser drains a refused body), hold the 413 until the rest of the body has arrived and been
 * discarded — up to {@link REFUSED_BODY_DRAIN_LIMIT} bytes and {@link REFUSED_BODY_DRAIN_TIMEOUT} ms; past
 * either the connection is closed as before.
 */
function answerRefusedBodiesAfterReading(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const raw = request.raw;
    if (reply.statusCode !== 413 || raw.complete || raw.readableEnded) return done(null, payload);
    let drained = 0;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      raw.off('data', onData).off('end', finish).off('error', finish).off('close', finish);
      done(null, payload);
    };
    const onData = (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > REFUSED_BODY_DRAIN_LIMIT) finish();
    };
    const timer = setTimeout(finish, REFUSED_BODY_DRAIN_TIMEOUT);
    raw.on('data', onData).once('end', finish).once('error', finish).once('close', finish);
    raw.resume();
  });
}
