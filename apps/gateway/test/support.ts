// What the gateway's e2e specs share: the environment they boot the gateway with, starting it on a free
// port (alone, or two instances on one redis-server), a few HTTP calls, and waiting for a state by polling.
import type { INestApplication } from '@nestjs/common';
import { request, type HttpResult } from '../../../libs/cache/test/helpers';
import { RedisServer, waitFor } from '../../../test/harness';
import { createApp } from '../src/bootstrap';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';

/** Variables createApp lays over `process.env` (`undefined` removes one). */
export type GatewayEnv = Record<string, string | undefined>;

/** A gateway listening on 127.0.0.1, and the URL to reach it (`http://127.0.0.1:<port>`, no trailing slash). */
export interface Gateway {
  app: INestApplication;
  base: string;
}

/**
 * The environment the specs boot the gateway with: Redis at `redisUrl` and no durable client, a health check
 * and at most 200 ms between reconnects (so a Redis crash and its recovery show quickly), no logs. `overrides`
 * add to it or replace any of it.
 */
export function gatewayEnv(redisUrl: string, overrides: GatewayEnv = {}): GatewayEnv {
  return {
    REDIS_URL: redisUrl,
    REDIS_DURABLE_URL: undefined,
    REDIS_HEALTH_CHECK_INTERVAL: '200',
    REDIS_MAX_RECONNECT_DELAY: '200',
    LOG_LEVEL: 'fatal',
    ...overrides,
  };
}

/** Turns off the exporters the surrounding environment may configure: OTLP traces and Sentry. */
export const NO_TELEMETRY: GatewayEnv = {
  OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
  OTEL_TRACES_EXPORTER: undefined,
  SENTRY_DSN: undefined,
};

/** Creates the gateway (createApp with `env`) and has it listen on a free port of 127.0.0.1. */
export async function serveGateway(adapter: HttpAdapterName, env: GatewayEnv): Promise<Gateway> {
  const app = await createApp({ adapter, env });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, base: `http://127.0.0.1:${port}` };
}

/** A redis-server and two gateways on it: A on Fastify, B on Express. */
export interface TwoGateways {
  redis: RedisServer;
  a: Gateway;
  b: Gateway;
}

/** Starts a redis-server, then A and B on it, each with `start`; stops what it started if one fails. */
export async function startTwoGateways(
  start: (adapter: HttpAdapterName, redisUrl: string) => Promise<Gateway>,
): Promise<TwoGateways> {
  const redis = await RedisServer.start();
  let a: Gateway | undefined;
  try {
    a = await start('fastify', redis.url());
    return { redis, a, b: await start('express', redis.url()) };
  } catch (err) {
    await stopTwoGateways({ redis, a });
    throw err;
  }
}

/**
 * Two gateways for the job-queue tests: A (Fastify) only enqueues (`JOB_QUEUE_ROLE=producer`), B (Express) runs
 * the workers; telemetry off, plus `env`.
 */
export function startJobGateways(env: GatewayEnv = {}): Promise<TwoGateways> {
  return startTwoGateways((adapter, url) =>
    serveGateway(adapter, {
      ...gatewayEnv(url),
      ...NO_TELEMETRY,
      JOB_QUEUE_ROLE: adapter === 'fastify' ? 'producer' : 'worker',
      ...env,
    }),
  );
}

/** Closes A and B, then stops their redis-server; skips any that did not start. */
export async function stopTwoGateways({ redis, a, b }: Partial<TwoGateways>): Promise<void> {
  await a?.app.close();
  await b?.app.close();
  await redis?.stop();
}

/**
 * Calls `probe` every `interval` ms until it returns something other than `undefined` or `false`, and returns
 * that; returns `undefined` once `timeout` ms have passed (a probe that throws counts as "not yet"). It does
 * not throw: for waits whose outcome the assertions that follow check (see {@link until} for a wait that must
 * succeed). The test kit's `waitFor` underneath.
 */
export function poll<T>(
  timeout: number,
  interval: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
): Promise<T | undefined> {
  return waitFor('a poll', timeout, probe, { intervalMs: interval }).catch(() => undefined);
}

/**
 * {@link poll} that must succeed: returns what `probe` returned, or throws after `timeout` ms, naming `what`
 * and adding `details()` (the last answer, a process's output). The test kit's `waitFor`.
 */
export function until<T>(
  what: string,
  timeout: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { interval = 50, details }: { interval?: number; details?: () => string } = {},
): Promise<T> {
  return waitFor(what, timeout, probe, { intervalMs: interval, details });
}

/** GET `base + path` with fetch: the status, the body parsed as JSON, and the body as text. */
export async function getJson<T = unknown>(
  base: string,
  path: string,
): Promise<{ status: number; body: T; text: string }> {
  const res = await fetch(base + path);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, text };
}

/** POST `body` as JSON (with `raw`, the string given as it is; `undefined` sends none) with {@link request}. */
export function postJson(base: string, path: string, body: unknown, raw = false): Promise<HttpResult> {
  return request(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ? (body as string) : JSON.stringify(body),
  });
}

/**
 * Polls GET /health/ready for 5 s at most until the gateway says `ok` (it boots without waiting for Redis).
 * Does not throw: what the test checks next says what went wrong.
 */
export async function waitForReady(base: string, interval = 25): Promise<void> {
  await poll(
    5_000,
    interval,
    async () => (await getJson<{ status: string }>(base, '/health/ready')).body.status === 'ok',
  );
}

/** Waits (10 s at most) until the gateway's cache receives invalidation messages: its subscriber is in sync. */
export async function untilCacheSynced(base: string): Promise<void> {
  await until(
    `the cache invalidation of ${base} to sync`,
    10_000,
    async () => Boolean((await request(`${base}/cache/stats`)).body?.invalidation?.synced),
    { interval: 20 },
  );
}
