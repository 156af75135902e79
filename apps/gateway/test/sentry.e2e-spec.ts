// Sentry through the real gateway (createApp) with SENTRY_DSN pointing at a local receiver of Sentry
// envelopes, against a password-protected redis-server: a bug in a route handler (simulated by making a
// real handler throw) is reported with the route, redacted request data and the Redis state; deliberate
// 503s while Redis is down are not reported; nothing is sent without SENTRY_DSN.
import type { INestApplication } from '@nestjs/common';
import { SeriesService } from '@redwing/metrics';
import { RedisClientManager } from '@redwing/redis';
import { RedisServer, stopAll } from '../../../test/harness';
import { SentryReceiver } from '../../../libs/metrics/test/receivers';
import { gatewayEnv, NO_TELEMETRY, serveGateway, type Gateway, type GatewayEnv } from './support';

const PASSWORD = 'sentry-e2e-pa55';
// Far from the throwing line below: Sentry sends a few source lines around it (context lines).
const AUTHORIZATION = 'Basic dXNlcjpwYXNzd29yZA==';
const COOKIE_VALUE = 's3cr3t-cookie';
const SESSION_ID = 'abc-session-id';
let redis: RedisServer;
let receiver: SentryReceiver;

beforeAll(async () => {
  [redis, receiver] = await Promise.all([
    RedisServer.start({ requirepass: PASSWORD }),
    SentryReceiver.start(),
  ]);
});

afterAll(async () => {
  jest.restoreAllMocks();
  await receiver?.close();
  await stopAll();
});

/** Without SENTRY_DSN in `env`, the gateway reports nothing. */
async function startGateway(env: GatewayEnv): Promise<Gateway> {
  const gateway = await serveGateway(
    'fastify',
    gatewayEnv(redis.url({ password: PASSWORD }), { ...NO_TELEMETRY, ...env }),
  );
  await gateway.app.get(RedisClientManager).get().waitUntilReady(5_000);
  return gateway;
}

describe('gateway with SENTRY_DSN', () => {
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    ({ app, base } = await startGateway({
      SENTRY_DSN: receiver.dsn,
      SENTRY_ENVIRONMENT: 'e2e',
      SENTRY_RELEASE: 'gw@1.2.3',
    }));
  });

  afterAll(async () => {
    await app?.close();
    delete process.env.SENTRY_DSN;
    delete process.env.SENTRY_ENVIRONMENT;
    delete process.env.SENTRY_RELEASE;
  });

  beforeEach(() => receiver.clear());

  it('reports an unhandled error with route, redacted request data and the Redis state', async () => {
    // A bug under a real route: a service the handler calls throws, once.
    const spy = jest.spyOn(SeriesService.prototype, 'localTotals').mockImplementationOnce(() => {
      throw new RangeError('overview exploded');
    });
    const res = await fetch(`${base}/stats/overview?session=${SESSION_ID}&view=full`, {
      headers: { authorization: AUTHORIZATION, cookie: `sid=${COOKIE_VALUE}`, 'x-request-id': 'req-1' },
    });
    expect(res.status).toBe(500);
    expect(spy).toHaveBeenCalledTimes(1);

    const [event] = await receiver.waitForEvents(1);
    expect(event.exception?.values?.[0]).toMatchObject({ type: 'RangeError', value: 'overview exploded' });
    expect(event).toMatchObject({
      transaction: 'GET /stats/overview',
      environment: 'e2e',
      release: 'gw@1.2.3',
      server_name: 'gateway',
      tags: { 'http.route': '/stats/overview', 'http.method': 'GET', service: 'gateway' },
      request: {
        method: 'GET',
        query_string: 'session=%5BFiltered%5D&view=full',
        headers: { authorization: '[Filtered]', cookie: '[Filtered]', 'x-request-id': 'req-1' },
      },
    });
    expect(event.contexts?.redis?.default).toMatchObject({
      state: 'ready',
      breaker: 'closed',
      status: 'up',
      url: `redis://:***@127.0.0.1:${redis.port}`,
    });
    const sent = receiver.rawBodies.join('\n');
    for (const secret of [PASSWORD, AUTHORIZATION, COOKIE_VALUE, SESSION_ID]) {
      expect({ secret, leaked: sent.includes(secret) }).toEqual({ secret, leaked: false });
    }
    // The next call is the real handler again.
    expect((await fetch(`${base}/stats/overview`)).status).toBe(200);
  });

  it('does not report the deliberate 503 of the series while Redis is down', async () => {
    await redis.kill('SIGKILL');
    try {
      expect((await fetch(`${base}/stats/series`)).status).toBe(503);
      expect((await fetch(`${base}/stats/overview`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.events).toEqual([]);
    } finally {
      await redis.restart();
    }
    await app.get(RedisClientManager).get().waitUntilReady(10_000);
  }, 20_000);
});

describe('gateway without SENTRY_DSN', () => {
  it('sends nothing', async () => {
    receiver.clear();
    const { app, base } = await startGateway({ SENTRY_DSN: undefined });
    const spy = jest.spyOn(SeriesService.prototype, 'localTotals').mockImplementationOnce(() => {
      throw new Error('unreported');
    });
    try {
      expect((await fetch(`${base}/stats/overview`)).status).toBe(500);
      expect(spy).toHaveBeenCalled();
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.envelopes).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
