import { Injectable, Module } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import {
  InjectRedis,
  ManagedRedisClient,
  RedisEvents,
  resolveRedisConfig,
  RedisClientManager,
  RedisClientModule,
  RedisCommandTimeoutError,
  RedisHealthIndicator,
  RedisUnavailableError,
} from '@redwing/redis';
import type { Redis } from 'ioredis';
import { AsyncLocalStorage } from 'node:async_hooks';
import { RedisServer } from '../../../test/harness';
import { bootRedisModule, fastRedisOptions, sleep, waitFor } from './helpers';

describe('RedisClientModule against a real redis-server', () => {
  let main: RedisServer;
  let durable: RedisServer;

  beforeAll(async () => {
    [main, durable] = await Promise.all([
      RedisServer.start({ requirepass: 's3cr3t-Pa55word' }),
      RedisServer.start({ appendonly: true, maxmemoryPolicy: 'noeviction' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([main?.stop(), durable?.stop()]);
  });

  it('connects named clients, injects raw connections by name and keeps passwords out of health', async () => {
    @Injectable()
    class Orders {
      constructor(
        @InjectRedis() readonly cache: Redis,
        @InjectRedis('durable') readonly durable: Redis,
      ) {}
    }
    @Module({ providers: [Orders] })
    class OrdersModule {}

    const module = await Test.createTestingModule({
      imports: [
        RedisClientModule.forRoot({
          ...fastRedisOptions(),
          url: main.url({ password: 's3cr3t-Pa55word' }),
          clients: { durable: { url: durable.url() } },
        }),
        OrdersModule,
      ],
    }).compile();
    await module.init();
    const manager = module.get(RedisClientManager);
    await waitFor('both clients up', 5_000, () => manager.all().every((c) => c.getHealth().status === 'up'));

    const orders = module.get(Orders);
    await orders.cache.set('k', 'from-cache');
    await orders.durable.set('k', 'from-durable');
    expect(await main.cli('-a', 's3cr3t-Pa55word', '--no-auth-warning', 'GET', 'k')).toBe('from-cache');
    expect(await durable.cli('GET', 'k')).toBe('from-durable');

    const health = manager.getHealth();
    expect(Object.keys(health).sort()).toEqual(['default', 'durable']);
    expect(health.default.url).not.toContain('s3cr3t');
    expect(health.default.url).toContain('***');
    expect(health.default).toMatchObject({
      state: 'ready',
      breaker: 'closed',
      status: 'up',
      topology: 'standalone',
    });
    expect(health.default.latencyMs).toEqual(expect.any(Number));

    const indicator = module.get(RedisHealthIndicator).isHealthy('redis');
    expect(indicator.redis.status).toBe('up');
    expect(JSON.stringify(indicator)).not.toContain('s3cr3t');
    await module.close();
  });

  it('forRootAsync takes options from a factory', async () => {
    const module = await Test.createTestingModule({
      imports: [
        RedisClientModule.forRootAsync({
          useFactory: async () => ({ ...fastRedisOptions(), url: durable.url() }),
          clientNames: [],
        }),
      ],
    }).compile();
    await module.init();
    const manager = module.get(RedisClientManager);
    expect(await manager.get().waitUntilReady(5_000)).toBe(true);
    expect(await manager.get().command.ping()).toBe('PONG');
    await module.close();
  });

  it('reports reply errors as errors of the command, not of the connection', async () => {
    const { module, manager } = await bootRedisModule({ url: durable.url() });
    const client = manager.get();
    await client.waitUntilReady(5_000);
    await client.command.set('str', 'x');
    const outcomes: string[] = [];
    manager.events.on('command', (e) => outcomes.push(e.outcome));
    for (let i = 0; i < 50; i++) await expect(client.command.lpush('str', 'y')).rejects.toThrow(/WRONGTYPE/);
    expect(client.getBreakerState()).toBe('closed');
    expect(client.stats().counters.replyErrors).toBe(50);
    expect(outcomes.filter((o) => o === 'reply-error')).toHaveLength(50);
    await module.close();
  });

  it('fails commands fast with a typed error while the breaker is forced open', async () => {
    const { module, manager } = await bootRedisModule({ url: durable.url() });
    const client = manager.get();
    await client.waitUntilReady(5_000);
    client.breaker.forceOpen();
    const started = performance.now();
    const err = await client.command.get('k').catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(50);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    expect(err).toMatchObject({ reason: 'forced-open', fallbackAllowed: true, command: 'get' });
    expect(client.getHealth().status).toBe('degraded');
    client.breaker.release();
    expect(await client.command.ping()).toBe('PONG');
    await module.close();
  });

  it('rejects a slow command with RedisCommandTimeoutError after commandTimeout', async () => {
    const { module, manager } = await bootRedisModule({ url: durable.url(), commandTimeout: 200 });
    const client = manager.get();
    await client.waitUntilReady(5_000);
    await durable.cli('CLIENT', 'PAUSE', '500', 'ALL');
    const err = await client.command.get('k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisCommandTimeoutError);
    expect(err).toMatchObject({ command: 'get', timeout: 200 });
    expect(client.stats().counters.timeouts).toBe(1);
    await sleep(400); // let the pause end before the next test uses the server
    await module.close();
  });

  it('lends dedicated connections from a bounded pool for WATCH/MULTI', async () => {
    const { module, manager } = await bootRedisModule({
      url: durable.url(),
      // 20 contended WATCH/MULTI increments queue on 2 connections: the wait must not trip on a loaded machine.
      pool: { maxSize: 2, acquireTimeout: 1_000 },
    });
    const client = manager.get();
    await client.waitUntilReady(5_000);
    await client.command.set('counter', '0');
    const increment = () =>
      client.withConnection(async (conn) => {
        for (;;) {
          await conn.watch('counter');
          const value = Number(await conn.get('counter'));
          const result = await conn
            .multi()
            .set('counter', String(value + 1))
            .exec();
          if (result) return;
        }
      });
    await Promise.all(Array.from({ length: 20 }, increment));
    expect(await client.command.get('counter')).toBe('20');
    const pool = client.stats().pool;
    expect(pool.size).toBeLessThanOrEqual(2);
    expect(pool.acquired).toBeGreaterThanOrEqual(20);

    // Both connections held: the third borrower times out with a clear error.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const holders = [client.withConnection(() => held), client.withConnection(() => held)];
    await expect(client.withConnection(async () => 1)).rejects.toThrow(/pool\.maxSize 2/);
    release();
    await Promise.all(holders);
    expect(client.stats().pool.timeouts).toBe(1);
    await module.close();
  });

  it('serves subscriber and blocking roles on their own connections', async () => {
    const { module, manager } = await bootRedisModule({ url: durable.url() });
    const client = manager.get();
    await client.waitUntilReady(5_000);
    const sub = client.subscriber();
    const received: string[] = [];
    sub.on('message', (_channel: string, message: string) => received.push(message));
    await waitFor('subscriber ready', 5_000, () => sub.status === 'ready');
    await sub.subscribe('news');
    await client.command.publish('news', 'hello');
    await waitFor('message', 2_000, () => received.length === 1);

    const blocking = client.createDedicated('blocking', { commandTimeout: undefined });
    await waitFor('blocking ready', 5_000, () => blocking.status === 'ready');
    const popped = (blocking as Redis).blpop('jobs', 2);
    await client.command.rpush('jobs', 'j1');
    expect(await popped).toEqual(['jobs', 'j1']);
    expect(received).toEqual(['hello']);
    await module.close();
    expect(sub.status).toBe('end');
    expect(blocking.status).toBe('end');
  });

  it("calls the command tracer in the caller's async context and ends it with the outcome", async () => {
    const { module, manager } = await bootRedisModule({ url: durable.url() });
    const client = manager.get();
    await client.waitUntilReady(5_000);
    const request = new AsyncLocalStorage<string>();
    const spans: Array<{ command: string; request?: string; outcome?: string; error?: string }> = [];
    manager.events.setTracer({
      start: (_client, command) => spans[spans.push({ command, request: request.getStore() }) - 1],
      end: (span, outcome, error) => Object.assign(span as object, { outcome, error: error?.name }),
    });
    await request.run('req-1', () => client.command.set('traced', 'v'));
    await request.run('req-2', () => client.command.lpush('traced', 'x').catch(() => undefined));
    manager.events.setTracer(null);
    await client.command.get('traced');
    expect(spans).toEqual([
      { command: 'set', request: 'req-1', outcome: 'ok', error: undefined },
      { command: 'lpush', request: 'req-2', outcome: 'reply-error', error: 'ReplyError' },
    ]);
    await module.close();
  });

  it('emits an audit event for a plain-text connection to a host that is not on loopback', async () => {
    // Detection is covered by the config tests (10.x without TLS -> insecureRemote); no traffic may leave
    // this machine, so the emission path is driven with a loopback config flagged as remote.
    const [config] = resolveRedisConfig({ ...fastRedisOptions(), url: durable.url() }).clients;
    expect(config.insecureRemote).toBe(false);
    expect(
      resolveRedisConfig({ useEnv: false, url: 'redis://10.1.2.3:6379' }).clients[0].insecureRemote,
    ).toBe(true);
    expect(
      resolveRedisConfig({ useEnv: false, url: 'rediss://10.1.2.3:6379' }).clients[0].insecureRemote,
    ).toBe(false);
    const events = new RedisEvents();
    const audits: string[] = [];
    events.on('audit', (e) => audits.push(e.message));
    const client = new ManagedRedisClient({ ...config, insecureRemote: true }, events);
    client.start();
    expect(audits).toEqual([expect.stringMatching(/without TLS; use rediss:\/\//)]);
    await client.close();
  });

  it('plugs into @nestjs/terminus: up while healthy, degraded (HTTP-200 semantics) when a client is down', async () => {
    const victim = await RedisServer.start();
    const module = await Test.createTestingModule({
      imports: [
        TerminusModule,
        RedisClientModule.forRoot({
          ...fastRedisOptions(),
          url: durable.url(),
          clients: { victim: { url: victim.url() } },
        }),
      ],
    }).compile();
    await module.init();
    const manager = module.get(RedisClientManager);
    await waitFor('clients up', 5_000, () => manager.all().every((c) => c.getHealth().status === 'up'));
    const terminus = module.get(HealthCheckService);
    const indicator = module.get(RedisHealthIndicator);
    const ok = await terminus.check([() => indicator.isHealthy('redis')]);
    expect(ok.status).toBe('ok');
    expect(ok.details.redis).toMatchObject({
      status: 'up',
      clients: { default: { state: 'ready' }, victim: { state: 'ready' } },
    });

    await victim.kill();
    await waitFor('victim degraded', 2_000, () => manager.get('victim').getHealth().status === 'degraded');
    const degraded = await terminus.check([() => indicator.isHealthy('redis')]);
    expect(degraded.status).not.toBe('error');
    expect(degraded.details.redis.status).toBe('degraded');
    await expect(
      terminus.check([() => indicator.isHealthy('redis', { failWhenDegraded: true })]),
    ).rejects.toMatchObject({
      response: { status: 'error' },
    });
    await module.close();
    await victim.stop();
  });
});
