import { GatewayConfigError, loadGatewayEnv, logLevelsFrom } from './gateway-env.schema';

describe('loadGatewayEnv', () => {
  it('applies the documented defaults to an empty environment', () => {
    expect(loadGatewayEnv({})).toEqual({
      PORT: 3000,
      HOST: '127.0.0.1',
      HTTP_ADAPTER: 'fastify',
      UPSTREAM_DELAY_MS: 200,
      RATE_LIMIT_BOARDS: 120,
      LOG_LEVEL: 'log',
    });
  });

  it('converts numbers and keeps variables it does not know', () => {
    const env = loadGatewayEnv({ PORT: '8080', REDIS_HEALTH_CHECK_INTERVAL: '250', PATH: '/usr/bin' });
    expect(env.PORT).toBe(8080);
    expect(env.REDIS_HEALTH_CHECK_INTERVAL).toBe(250);
    expect((env as unknown as Record<string, unknown>).PATH).toBe('/usr/bin');
  });

  it('accepts the container settings and a durable client', () => {
    const env = loadGatewayEnv({
      HOST: '0.0.0.0',
      HTTP_ADAPTER: 'express',
      REDIS_URL: 'rediss://user:secret@redis-cache:6380/2',
      REDIS_DURABLE_URL: 'redis://redis-durable:6379',
    });
    expect(env).toMatchObject({
      HOST: '0.0.0.0',
      HTTP_ADAPTER: 'express',
      REDIS_DURABLE_URL: 'redis://redis-durable:6379',
    });
  });

  it('reports every invalid variable by name at once, never echoing a value', () => {
    let error: unknown;
    try {
      loadGatewayEnv({
        PORT: 'eighty',
        HTTP_ADAPTER: 'koa',
        REDIS_URL: 'http://user:hunter2@example.com',
        UPSTREAM_DELAY_MS: '-1',
        RATE_LIMIT_BOARDS: '0',
        LOG_LEVEL: 'chatty',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(GatewayConfigError);
    const { problems, message } = error as GatewayConfigError;
    expect(problems).toHaveLength(6);
    for (const name of [
      'PORT',
      'HTTP_ADAPTER',
      'REDIS_URL',
      'UPSTREAM_DELAY_MS',
      'RATE_LIMIT_BOARDS',
      'LOG_LEVEL',
    ]) {
      expect(message).toContain(`"${name}"`);
    }
    expect(message).not.toContain('hunter2');
  });

  it('rejects a port out of range and a malformed host', () => {
    expect(() => loadGatewayEnv({ PORT: '70000' })).toThrow(/"PORT" must be a valid port/);
    expect(() => loadGatewayEnv({ HOST: 'not a host' })).toThrow(/"HOST" must be a valid hostname/);
  });
});

describe('logLevelsFrom', () => {
  it('keeps the given level and every more severe one', () => {
    expect(logLevelsFrom('verbose')).toEqual(['verbose', 'debug', 'log', 'warn', 'error', 'fatal']);
    expect(logLevelsFrom('warn')).toEqual(['warn', 'error', 'fatal']);
    expect(logLevelsFrom('fatal')).toEqual(['fatal']);
  });
});
