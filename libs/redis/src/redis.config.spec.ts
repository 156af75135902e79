import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  isLoopbackHost,
  readRedisEnv,
  reconnectDelay,
  REDIS_ENV_VARS,
  resolveRedisConfig,
  type ResolvedRedisClientConfig,
} from './redis.config';
import { RedisConfigError } from './redis.errors';
import type { RedisClientModuleOptions } from './redis.interfaces';

/** Resolves without looking at process.env unless `env` is given. */
function resolve(options: RedisClientModuleOptions, env?: Record<string, string>) {
  return resolveRedisConfig({ ...options, ...(env ? { env } : { useEnv: false }) });
}
function client(options: RedisClientModuleOptions, env?: Record<string, string>, name = 'default') {
  const found = resolve(options, env).clients.find((c) => c.name === name);
  if (!found) throw new Error(`no client ${name}`);
  return found;
}
/** The RedisConfigError thrown by `fn` (fails the test if it throws nothing or something else). */
function configError(fn: () => unknown): RedisConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RedisConfigError);
    return err as RedisConfigError;
  }
  throw new Error('expected a RedisConfigError, nothing was thrown');
}
function expectSafetyFields(c: ResolvedRedisClientConfig) {
  if (c.cluster) {
    expect(c.cluster.options).toMatchObject({
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    expect(typeof c.cluster.options.clusterRetryStrategy).toBe('function');
    expect(c.cluster.options.redisOptions).toBe(c.redisOptions);
    expect(c.redisOptions).toMatchObject({
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: null,
      commandTimeout: c.commandTimeout,
      connectTimeout: c.connectTimeout,
    });
    return;
  }
  expect(c.redisOptions).toMatchObject({
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: null,
    commandTimeout: c.commandTimeout,
    connectTimeout: c.connectTimeout,
  });
  expect(typeof c.redisOptions.retryStrategy).toBe('function');
}

describe('resolveRedisConfig: defaults', () => {
  it('gives one standalone default client on 127.0.0.1:6379 with the documented defaults', () => {
    const config = resolve({});
    expect(config.keyPrefix).toBe('redwing');
    expect(config.clients).toHaveLength(1);
    const c = config.clients[0];
    expect(c).toMatchObject({
      name: 'default',
      topology: 'standalone',
      displayUrl: 'redis://127.0.0.1:6379',
      secrets: [],
      commandTimeout: 1_000,
      connectTimeout: 5_000,
      maxRetries: 0,
      maxReconnectDelay: 2_000,
      insecureRemote: false,
    });
    expect(c.breaker).toEqual({
      enabled: true,
      failureRateThreshold: 50,
      slowCallRateThreshold: 80,
      slowCallDuration: 500,
      window: 10_000,
      minimumVolume: 20,
      resetTimeout: 5_000,
      resetJitter: 0.2,
      maxHalfOpenTime: 2_000,
    });
    expect(c.healthCheck).toEqual({ interval: 2_000, timeout: 1_000, sampleSize: 20, reconnectAfter: 3 });
    expect(c.pool).toEqual({
      minSize: 0,
      maxSize: 4,
      acquireTimeout: 1_000,
      idleTimeout: 30_000,
      reapInterval: 10_000,
      validateAfterIdle: 5_000,
    });
    expect(c.fallback).toEqual({ enabled: true, maxEntries: 10_000, maxBytes: 16 * 1024 * 1024 });
    expect(c.redisOptions).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
    expect(c.redisOptions.tls).toBeUndefined();
    expect(c.redisOptions.password).toBeUndefined();
    expect(c.cluster).toBeUndefined();
    expectSafetyFields(c);
  });

  it('derives slowCallDuration, maxHalfOpenTime and healthCheck.timeout from commandTimeout', () => {
    const c = client({ commandTimeout: 3_001 });
    expect(c.breaker.slowCallDuration).toBe(1_501);
    expect(c.breaker.maxHalfOpenTime).toBe(6_002);
    expect(c.healthCheck.timeout).toBe(3_001);
    expect(client({ commandTimeout: 1 }).breaker.slowCallDuration).toBe(1);
  });

  it('keeps explicit derived values', () => {
    const c = client({
      commandTimeout: 3_000,
      breaker: { slowCallDuration: 100 },
      healthCheck: { timeout: 50 },
    });
    expect(c.breaker.slowCallDuration).toBe(100);
    expect(c.healthCheck.timeout).toBe(50);
  });
});

describe('resolveRedisConfig: URL, credentials and TLS', () => {
  it('takes user, password (decoded) and db from the URL; rediss turns TLS on with the system CAs', () => {
    const c = client({ url: 'rediss://app:s%40cret@10.0.0.5:6380/2' });
    expect(c.redisOptions).toMatchObject({
      host: '10.0.0.5',
      port: 6380,
      username: 'app',
      password: 's@cret',
      db: 2,
      tls: {},
    });
    expect(c.displayUrl).toBe('rediss://app:***@10.0.0.5:6380/2');
    expect(c.secrets).toEqual(['s@cret']);
    expect(c.insecureRemote).toBe(false);
  });

  it('lets explicit username and password override the URL', () => {
    const c = client({ url: 'redis://u:urlpw@localhost', username: 'other', password: 'explicitpw' });
    expect(c.redisOptions).toMatchObject({ username: 'other', password: 'explicitpw' });
    expect(c.secrets).toEqual(['explicitpw']);
    expect(c.displayUrl).toBe('redis://other:***@localhost:6379');
  });

  it('lets explicit host, port and db override the URL', () => {
    const c = client({ url: 'redis://a:1/1', host: 'b', port: 2, db: 3 });
    expect(c.redisOptions).toMatchObject({ host: 'b', port: 2, db: 3 });
  });

  it('turns TLS on with the tls option on a redis:// URL and passes the TLS fields', () => {
    const c = client({
      url: 'redis://cache.internal:6380',
      tls: { ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'cache', rejectUnauthorized: false },
    });
    expect(c.redisOptions.tls).toEqual({
      ca: 'CA',
      cert: 'CERT',
      key: 'KEY',
      servername: 'cache',
      rejectUnauthorized: false,
    });
    expect(c.displayUrl).toBe('rediss://cache.internal:6380');
    expect(c.insecureRemote).toBe(false);
  });

  it('accepts IPv6 hosts', () => {
    const c = client({ url: 'redis://[::1]:7000' });
    expect(c.redisOptions).toMatchObject({ host: '::1', port: 7000 });
    expect(c.displayUrl).toBe('redis://[::1]:7000');
    expect(c.insecureRemote).toBe(false);
  });

  it('flags a non-loopback host without TLS as insecureRemote', () => {
    expect(client({ url: 'redis://10.0.0.5' }).insecureRemote).toBe(true);
    expect(client({ host: 'redis.example.com' }).insecureRemote).toBe(true);
    expect(client({ url: 'rediss://10.0.0.5' }).insecureRemote).toBe(false);
    expect(client({ host: 'localhost' }).insecureRemote).toBe(false);
    expect(client({ host: '127.0.0.2' }).insecureRemote).toBe(false);
  });

  it('shows a user name without a password in the display URL', () => {
    expect(client({ url: 'redis://app@h' }).displayUrl).toBe('redis://app@h:6379');
  });
});

describe('resolveRedisConfig: ioredis safety fields', () => {
  it('are always present and cannot be overridden by redisOptions', () => {
    const userOptions = {
      lazyConnect: false,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 20,
      commandTimeout: 99_999,
      connectTimeout: 99_999,
      retryStrategy: () => null,
      host: 'evil',
      port: 1,
      password: 'sneaky',
      username: 'sneaky',
      db: 9,
      tls: { rejectUnauthorized: false },
      sentinels: [{ host: 'evil', port: 1 }],
      connectionName: 'mine',
      keepAlive: 5_000,
    };
    const c = client({
      url: 'redis://localhost:6380',
      commandTimeout: 250,
      redisOptions: userOptions as RedisClientModuleOptions['redisOptions'],
    });
    expectSafetyFields(c);
    expect(c.redisOptions).toMatchObject({
      commandTimeout: 250,
      connectTimeout: 5_000,
      host: 'localhost',
      port: 6380,
      db: 0,
      connectionName: 'mine',
      keepAlive: 5_000,
      enableReadyCheck: false, // may be turned off (ACL users without INFO); defaults to true
    });
    expect(client({ url: 'redis://localhost:6380' }).redisOptions.enableReadyCheck).toBe(true);
    expect(c.redisOptions.password).toBeUndefined();
    expect(c.redisOptions.username).toBeUndefined();
    expect(c.redisOptions.tls).toBeUndefined();
    expect(c.redisOptions.sentinels).toBeUndefined();
    expect(typeof c.redisOptions.retryStrategy === 'function' && c.redisOptions.retryStrategy(3)).toEqual(
      expect.any(Number),
    );
  });

  it('never lets reconnectOnError re-send a command (2 becomes 1)', () => {
    const c = client({
      redisOptions: { reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false) },
    });
    const decide = c.redisOptions.reconnectOnError as (err: Error) => boolean | 1 | 2;
    expect(decide(new Error('READONLY You cannot write'))).toBe(1);
    expect(decide(new Error('other'))).toBe(false);
  });

  it('retryStrategy backs off 50·2^times ms ±20 %, capped at maxReconnectDelay, never null', () => {
    expect(reconnectDelay(1, 2_000, () => 0.5)).toBe(100);
    expect(reconnectDelay(1, 2_000, () => 0)).toBe(80);
    expect(reconnectDelay(1, 2_000, () => 1)).toBe(120);
    expect(reconnectDelay(3, 2_000, () => 0.5)).toBe(400);
    expect(reconnectDelay(10, 2_000, () => 0.5)).toBe(2_000);
    expect(reconnectDelay(10, 2_000, () => 0)).toBe(1_600);
    expect(reconnectDelay(10, 2_000, () => 1)).toBe(2_000);
    const c = client({ maxReconnectDelay: 700 });
    const retry = c.redisOptions.retryStrategy as (times: number) => number | null;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (times) => {
        const delay = retry(times);
        expect(typeof delay).toBe('number');
        expect(delay).toBeGreaterThanOrEqual(1);
        expect(delay).toBeLessThanOrEqual(700);
        const base = Math.min(50 * 2 ** Math.min(times, 32), 700);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('resolveRedisConfig: Sentinel', () => {
  it('builds sentinels, name, sentinel credentials and a sentinel display URL', () => {
    const c = client({
      url: 'redis://:masterpw@ignored/1',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ],
      name: 'mymaster',
      sentinelUsername: 'sentinel-user',
      sentinelPassword: 'sentinelpw',
    });
    expect(c.topology).toBe('sentinel');
    expect(c.redisOptions).toMatchObject({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ],
      name: 'mymaster',
      sentinelUsername: 'sentinel-user',
      sentinelPassword: 'sentinelpw',
      password: 'masterpw',
      db: 1,
    });
    expect(c.redisOptions.host).toBeUndefined();
    expect(c.redisOptions.enableTLSForSentinelMode).toBeUndefined();
    expect(c.displayUrl).toBe('redis+sentinel://:***@10.0.0.1:26379,10.0.0.2:26380/mymaster/1');
    expect(c.secrets.sort()).toEqual(['masterpw', 'sentinelpw']);
    expect(c.insecureRemote).toBe(true);
    expectSafetyFields(c);
  });

  it('enables TLS for sentinel mode with rediss', () => {
    const c = client({ url: 'rediss://h', sentinels: [{ host: 'localhost', port: 26379 }], name: 'm' });
    expect(c.redisOptions).toMatchObject({ tls: {}, enableTLSForSentinelMode: true });
    expect(c.displayUrl).toBe('rediss+sentinel://localhost:26379/m');
  });

  it('requires name', () => {
    const err = configError(() => resolve({ sentinels: [{ host: 'h', port: 26379 }] }));
    expect(err.field).toBe('name');
    expect(err.message).toMatch(/name is required with sentinels/);
  });
});

describe('resolveRedisConfig: Cluster', () => {
  it('builds nodes, safe cluster options and per-node redisOptions', () => {
    const c = client({
      url: 'rediss://app:clusterpw@ignored',
      tls: { ca: 'CA' },
      commandTimeout: 300,
      cluster: {
        nodes: ['10.0.0.1:7000', { host: '10.0.0.2', port: 7001 }, '[::1]:7002'],
        options: {
          scaleReads: 'slave',
          enableOfflineQueue: true,
          lazyConnect: false,
          enableReadyCheck: false,
        },
      },
      redisOptions: {
        connectionName: 'c',
        enableOfflineQueue: true,
      } as RedisClientModuleOptions['redisOptions'],
    });
    expect(c.topology).toBe('cluster');
    expect(c.cluster?.nodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    const options = c.cluster!.options;
    expect(options).toMatchObject({
      scaleReads: 'slave',
      enableOfflineQueue: false,
      enableReadyCheck: false, // the user's choice: not a safety field
      lazyConnect: true,
    });
    expect(typeof options.clusterRetryStrategy).toBe('function');
    expect(options.clusterRetryStrategy!(50)).toBeLessThanOrEqual(2_000);
    const node = options.redisOptions!;
    expect(node).toBe(c.redisOptions);
    expect(node).toMatchObject({
      username: 'app',
      password: 'clusterpw',
      tls: { ca: 'CA' },
      commandTimeout: 300,
      connectTimeout: 5_000,
      autoResendUnfulfilledCommands: false,
      enableReadyCheck: true,
      maxRetriesPerRequest: null,
      connectionName: 'c',
    });
    for (const key of ['host', 'port', 'lazyConnect', 'retryStrategy', 'enableOfflineQueue', 'db']) {
      expect(node).not.toHaveProperty(key);
    }
    expect(c.displayUrl).toBe('rediss://app:***@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002');
    expect(c.insecureRemote).toBe(false);
  });

  it('is insecureRemote when a node is remote and TLS is off', () => {
    expect(client({ cluster: { nodes: ['127.0.0.1:7000', '10.1.1.1:7001'] } }).insecureRemote).toBe(true);
    expect(client({ cluster: { nodes: ['127.0.0.1:7000'] } }).insecureRemote).toBe(false);
  });

  it('rejects db, empty nodes, cluster.options.redisOptions and cluster together with sentinels', () => {
    expect(configError(() => resolve({ db: 2, cluster: { nodes: ['h:1'] } })).field).toBe('db');
    expect(configError(() => resolve({ url: 'redis://h/3', cluster: { nodes: ['h:1'] } })).field).toBe('url');
    expect(resolve({ url: 'redis://h/0', cluster: { nodes: ['h:1'] } }).clients[0].topology).toBe('cluster');
    const empty = configError(() => resolve({ cluster: { nodes: [] } }));
    expect(empty.field).toBe('cluster.nodes');
    expect(empty.message).toMatch(/at least one/);
    expect(configError(() => resolve({ cluster: {} as never })).field).toBe('cluster.nodes');
    expect(
      configError(() => resolve({ cluster: { nodes: ['h:1'], options: { redisOptions: {} } as never } }))
        .field,
    ).toBe('cluster.options.redisOptions');
    expect(
      configError(() =>
        resolve({ cluster: { nodes: ['h:1'] }, sentinels: [{ host: 'h', port: 1 }], name: 'm' }),
      ).field,
    ).toBe('cluster');
    expect(configError(() => resolve({ cluster: { nodes: ['h'] } })).field).toBe('cluster.nodes[0]');
    expect(configError(() => resolve({ cluster: { nodes: ['::1:7000'] } })).message).toMatch(/\[::1\]:6379/);
  });
});

describe('resolveRedisConfig: validation names the field and the fix', () => {
  const cases: Array<[string, RedisClientModuleOptions, string, RegExp]> = [
    ['url scheme', { url: 'http://h:6379' }, 'url', /use redis:\/\/ or rediss:\/\//],
    ['url not a string', { url: 42 as never }, 'url', /must be a string/],
    ['url garbage', { url: 'not a url' }, 'url', /not a valid URL/],
    ['url port 0', { url: 'redis://h:0' }, 'url', /from 1 to 65535/],
    ['url db path', { url: 'redis://h/16' }, 'url', /from 0 to 15/],
    ['url db path text', { url: 'redis://h/abc' }, 'url', /\/0 to \/15/],
    ['url query', { url: 'redis://h?db=1' }, 'url', /query string/],
    ['url bad encoding', { url: 'redis://u:%zz@h' }, 'url', /percent-encoding/],
    ['host empty', { host: '' }, 'host', /must not be empty/],
    ['host with port', { host: 'h:6379' }, 'host', /set the port with port/],
    ['host with scheme', { host: 'redis://h' }, 'host', /bare host name/],
    ['port range', { port: 70_000 }, 'port', /from 1 to 65535/],
    ['port non-integer', { port: 1.5 }, 'port', /integer/],
    ['db range', { db: 16 }, 'db', /from 0 to 15/],
    ['commandTimeout 0', { commandTimeout: 0 }, 'commandTimeout', /from 1 to 600000 ms/],
    ['commandTimeout huge', { commandTimeout: 600_001 }, 'commandTimeout', /600000/],
    ['connectTimeout NaN', { connectTimeout: NaN }, 'connectTimeout', /integer/],
    ['connectTimeout string', { connectTimeout: '5000' as never }, 'connectTimeout', /got a string/],
    ['maxRetries negative', { maxRetries: -1 }, 'maxRetries', /from 0/],
    ['failure rate', { breaker: { failureRateThreshold: 101 } }, 'breaker.failureRateThreshold', /1 to 100/],
    ['slow rate', { breaker: { slowCallRateThreshold: 0 } }, 'breaker.slowCallRateThreshold', /1 to 100/],
    ['jitter', { breaker: { resetJitter: 1.5 } }, 'breaker.resetJitter', /from 0 to 1/],
    ['breaker enabled', { breaker: { enabled: 'yes' as never } }, 'breaker.enabled', /true or false/],
    ['breaker not object', { breaker: 5 as never }, 'breaker', /must be an object/],
    ['pool maxSize', { pool: { maxSize: 0 } }, 'pool.maxSize', /from 1/],
    [
      'pool min > max',
      { pool: { minSize: 5, maxSize: 2 } },
      'pool.minSize',
      /less than or equal to pool.maxSize/,
    ],
    ['health interval', { healthCheck: { interval: -1 } }, 'healthCheck.interval', /from 0/],
    ['fallback bytes', { fallback: { maxBytes: 0 } }, 'fallback.maxBytes', /from 1/],
    ['sentinels empty', { sentinels: [], name: 'm' }, 'sentinels', /at least one/],
    ['sentinel port', { sentinels: [{ host: 'h', port: 0 }], name: 'm' }, 'sentinels[0].port', /1 to 65535/],
    ['sentinel host', { sentinels: [{ host: '', port: 1 }], name: 'm' }, 'sentinels[0].host', /empty/],
    ['keyPrefix', { keyPrefix: 'a b' }, 'keyPrefix', /letters, digits/],
    ['keyPrefix long', { keyPrefix: 'a'.repeat(65) }, 'keyPrefix', /1–64/],
    ['tls not object', { tls: true as never }, 'tls', /must be an object/],
    ['tls ca type', { tls: { ca: 5 as never } }, 'tls.ca', /PEM/],
    [
      'tls unknown key',
      { tls: { rejectUnauthorised: false } as never },
      'tls.rejectUnauthorised',
      /rejectUnauthorized/,
    ],
    ['redisOptions', { redisOptions: 'x' as never }, 'redisOptions', /must be an object/],
    ['clients not object', { clients: [] as never }, 'clients', /must be an object/],
    ['client name', { clients: { 'bad name': {} } }, 'clients', /1–32 letters/],
    ['client reserved', { clients: { default: {} } }, 'clients.default', /top level/],
    [
      'named client timeout',
      { clients: { cache: { commandTimeout: 0 } } },
      'clients.cache.commandTimeout',
      /from 1 to 600000/,
    ],
    [
      'named client breaker',
      { clients: { cache: { breaker: { failureRateThreshold: 0 } } } },
      'clients.cache.breaker.failureRateThreshold',
      /1 to 100/,
    ],
    [
      'named client pool',
      { clients: { cache: { pool: { minSize: 9 } } } },
      'clients.cache.pool.minSize',
      /pool.maxSize \(4\)/,
    ],
    ['named client url', { clients: { q: { url: 'mysql://h' } } }, 'clients.q.url', /use redis:\/\//],
    [
      'named client keyPrefix',
      { clients: { q: { keyPrefix: 'x' } as never } },
      'clients.q.keyPrefix',
      /top level/,
    ],
    [
      'unknown close',
      { comandTimeout: 5 } as never,
      'comandTimeout',
      /unknown option; did you mean commandTimeout\?/,
    ],
    ['unknown case', { keyprefix: 'x' } as never, 'keyprefix', /did you mean keyPrefix\?/],
    ['unknown far', { zzzzzzzzzz: 1 } as never, 'zzzzzzzzzz', /unknown option; remove it/],
    ['unknown nested', { breaker: { windw: 5 } } as never, 'breaker.windw', /did you mean window\?/],
    [
      'unknown in client',
      { clients: { c: { pasword: 'x' } } } as never,
      'clients.c.pasword',
      /did you mean password\?/,
    ],
  ];

  it.each(cases)('%s', (_name, options, field, message) => {
    const err = configError(() => resolve(options));
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/^Invalid Redis configuration: /);
  });

  it('accepts Buffer PEM values and tolerates the isGlobal module extra', () => {
    const c = client({ tls: { ca: Buffer.from('CA') }, isGlobal: true } as RedisClientModuleOptions);
    expect(c.redisOptions.tls).toEqual({ ca: Buffer.from('CA') });
  });

  it('names odd unknown keys readably', () => {
    expect(configError(() => resolve({ 'a b\n': 1 } as never)).field).toBe('["a b?"]');
    expect(configError(() => resolve({ breaker: { '': 1 } } as never)).field).toBe('breaker[""]');
  });

  it.each([null, undefined, 'redis://h', 42, [], true])(
    'rejects non-object options %p naming options',
    (options) => {
      const err = configError(() => resolveRedisConfig(options as never));
      expect(err.field).toBe('options');
    },
  );

  it('turns a throwing getter into a RedisConfigError', () => {
    const options = {
      useEnv: false,
      get url(): string {
        throw new Error('boom');
      },
    };
    expect(configError(() => resolveRedisConfig(options)).field).toBe('options');
  });

  it('never puts a password or the raw URL in a message', () => {
    const urls = [
      'http://user:Sup3rS3cretPw@h:6379',
      'redis://user:Sup3rS3cretPw@h:99999',
      'redis://user:Sup3rS3cretPw@h/99',
      'redis://user:Sup3r/S3cretPw@h',
      'redis://user:Sup3rS3cretPw%zz@h',
      'Sup3rS3cretPw@h',
    ];
    for (const url of urls) {
      const err = configError(() => resolve({ url }));
      expect(err.message).not.toContain('S3cret');
      expect(err.stack).not.toContain('S3cret');
    }
    const withPassword = configError(() => resolve({ password: 'Sup3rS3cretPw', commandTimeout: -1 }));
    expect(withPassword.message).not.toContain('Sup3rS3cretPw');
  });
});

describe('resolveRedisConfig: environment and precedence', () => {
  it('uses env values when options leave them unset, explicit options otherwise, defaults last', () => {
    const env = {
      REDIS_COMMAND_TIMEOUT: '2000',
      REDIS_CONNECT_TIMEOUT: '3000',
      REDIS_KEY_PREFIX: 'envprefix',
    };
    const fromEnv = resolve({}, env);
    expect(fromEnv.keyPrefix).toBe('envprefix');
    expect(fromEnv.clients[0]).toMatchObject({ commandTimeout: 2_000, connectTimeout: 3_000 });
    const explicit = resolve({ commandTimeout: 4_000, keyPrefix: 'mine' }, env);
    expect(explicit.keyPrefix).toBe('mine');
    expect(explicit.clients[0]).toMatchObject({ commandTimeout: 4_000, connectTimeout: 3_000 });
    expect(resolveRedisConfig({ useEnv: false, env }).clients[0].commandTimeout).toBe(1_000);
  });

  it('reads process.env when env is not given, and not at all with useEnv: false', () => {
    const saved = process.env.REDIS_MAX_RETRIES;
    process.env.REDIS_MAX_RETRIES = '3';
    try {
      expect(resolveRedisConfig({}).clients[0].maxRetries).toBe(3);
      expect(resolveRedisConfig({ useEnv: false }).clients[0].maxRetries).toBe(0);
      expect(resolveRedisConfig({ env: {} }).clients[0].maxRetries).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.REDIS_MAX_RETRIES;
      else process.env.REDIS_MAX_RETRIES = saved;
    }
  });

  it('merges the connection field by field: explicit (or its URL) first, then env', () => {
    const env = { REDIS_URL: 'redis://envuser:envpw@envhost:6390/4', REDIS_PASSWORD: 'pwvar' };
    expect(client({}, env).redisOptions).toMatchObject({
      host: 'envhost',
      port: 6390,
      db: 4,
      username: 'envuser',
      password: 'pwvar',
    });
    expect(client({ url: 'redis://apphost' }, env).redisOptions).toMatchObject({
      host: 'apphost',
      port: 6390,
      password: 'pwvar',
    });
    expect(client({ url: 'redis://:urlpw@apphost:1' }, env).redisOptions).toMatchObject({
      port: 1,
      password: 'urlpw',
    });
    expect(client({ db: 2 }, env).redisOptions).toMatchObject({ host: 'envhost', db: 2 });
  });

  it('takes the topology from the explicit options when they set one', () => {
    const env = { REDIS_SENTINELS: 'h1:26379', REDIS_SENTINEL_NAME: 'env-master' };
    expect(client({}, env).topology).toBe('sentinel');
    expect(client({}, env).redisOptions.name).toBe('env-master');
    expect(client({ cluster: { nodes: ['c:7000'] } }, env).topology).toBe('cluster');
    expect(configError(() => resolve({}, { REDIS_SENTINELS: 'h:1' })).field).toBe('REDIS_SENTINEL_NAME');
  });

  it('turns TLS on from REDIS_TLS_* unless the explicit URL says redis://', () => {
    const env = { REDIS_TLS_SERVERNAME: 'cache', REDIS_TLS_REJECT_UNAUTHORIZED: 'no' };
    expect(client({}, env).redisOptions.tls).toEqual({ servername: 'cache', rejectUnauthorized: false });
    expect(client({ url: 'redis://h' }, env).redisOptions.tls).toBeUndefined();
    expect(client({ tls: { servername: 'mine' } }, env).redisOptions.tls).toEqual({
      servername: 'mine',
      rejectUnauthorized: false,
    });
  });

  it('gives named clients the top-level (and env) timeouts and sections, their own values winning, never the env address', () => {
    const env = {
      REDIS_URL: 'redis://:envpw@envhost',
      REDIS_COMMAND_TIMEOUT: '2000',
      REDIS_BREAKER_FAILURE_RATE: '30',
      REDIS_FALLBACK_ENABLED: 'false',
    };
    const config = resolve(
      {
        maxReconnectDelay: 900,
        pool: { maxSize: 8 },
        healthCheck: { interval: 500 },
        clients: {
          cache: { url: 'redis://cachehost', commandTimeout: 200, breaker: { window: 1_000 } },
          durable: { host: 'durablehost', pool: { maxSize: 2 } },
        },
      },
      env,
    );
    expect(config.clients.map((c) => c.name)).toEqual(['default', 'cache', 'durable']);
    const [main, cache, durable] = config.clients;
    expect(main).toMatchObject({ commandTimeout: 2_000, maxReconnectDelay: 900 });
    expect(main.redisOptions).toMatchObject({ host: 'envhost', password: 'envpw' });
    expect(cache).toMatchObject({ commandTimeout: 200, maxReconnectDelay: 900, secrets: [] });
    expect(cache.breaker).toMatchObject({ failureRateThreshold: 30, window: 1_000, slowCallDuration: 100 });
    expect(cache.healthCheck).toMatchObject({ interval: 500, timeout: 200 });
    expect(cache.fallback.enabled).toBe(false);
    expect(cache.pool.maxSize).toBe(8);
    expect(cache.redisOptions).toMatchObject({ host: 'cachehost', port: 6379 });
    expect(cache.redisOptions.password).toBeUndefined();
    expect(durable.commandTimeout).toBe(2_000);
    expect(durable.pool.maxSize).toBe(2);
    expect(durable.redisOptions.host).toBe('durablehost');
  });

  it('names the variable when an env value is invalid', () => {
    expect(configError(() => resolve({}, { REDIS_URL: 'http://h' })).field).toBe('REDIS_URL');
    expect(configError(() => resolve({}, { REDIS_BREAKER_FAILURE_RATE: '0' })).field).toBe(
      'REDIS_BREAKER_FAILURE_RATE',
    );
    expect(configError(() => resolve({}, { REDIS_KEY_PREFIX: 'no spaces' })).field).toBe('REDIS_KEY_PREFIX');
    expect(configError(() => resolveRedisConfig({ env: 'x' as never })).field).toBe('env');
    expect(configError(() => resolveRedisConfig({ useEnv: 'no' as never })).field).toBe('useEnv');
  });
});

describe('readRedisEnv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redwing-config-'));

  it('reads every documented variable', () => {
    writeFileSync(join(dir, 'ca.pem'), 'CA PEM');
    writeFileSync(join(dir, 'cert.pem'), 'CERT PEM');
    writeFileSync(join(dir, 'key.pem'), 'KEY PEM');
    const options = readRedisEnv({
      REDIS_URL: ' rediss://u:p@h:1/2 ',
      REDIS_USERNAME: 'user',
      REDIS_PASSWORD: 'pass word ',
      REDIS_TLS_CA_FILE: join(dir, 'ca.pem'),
      REDIS_TLS_CERT_FILE: join(dir, 'cert.pem'),
      REDIS_TLS_KEY_FILE: join(dir, 'key.pem'),
      REDIS_TLS_SERVERNAME: 'sni',
      REDIS_TLS_REJECT_UNAUTHORIZED: 'TRUE',
      REDIS_SENTINELS: 's1:26379, [::1]:26380',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 'spw',
      REDIS_CONNECT_TIMEOUT: '100',
      REDIS_COMMAND_TIMEOUT: '200',
      REDIS_MAX_RETRIES: '2',
      REDIS_MAX_RECONNECT_DELAY: '300',
      REDIS_HEALTH_CHECK_INTERVAL: '0',
      REDIS_BREAKER_ENABLED: 'No',
      REDIS_BREAKER_FAILURE_RATE: '10',
      REDIS_BREAKER_SLOW_CALL_RATE: '20',
      REDIS_BREAKER_SLOW_CALL_DURATION: '30',
      REDIS_BREAKER_WINDOW: '40',
      REDIS_BREAKER_MIN_VOLUME: '50',
      REDIS_BREAKER_RESET_TIMEOUT: '60',
      REDIS_FALLBACK_ENABLED: '1',
      REDIS_FALLBACK_MAX_ENTRIES: '70',
      REDIS_FALLBACK_MAX_BYTES: '80',
      REDIS_KEY_PREFIX: 'app.v2',
    });
    expect(options).toEqual({
      url: 'rediss://u:p@h:1/2',
      username: 'user',
      password: 'pass word ',
      tls: {
        ca: Buffer.from('CA PEM'),
        cert: Buffer.from('CERT PEM'),
        key: Buffer.from('KEY PEM'),
        servername: 'sni',
        rejectUnauthorized: true,
      },
      sentinels: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
      sentinelPassword: 'spw',
      connectTimeout: 100,
      commandTimeout: 200,
      maxRetries: 2,
      maxReconnectDelay: 300,
      healthCheck: { interval: 0 },
      breaker: {
        enabled: false,
        failureRateThreshold: 10,
        slowCallRateThreshold: 20,
        slowCallDuration: 30,
        window: 40,
        minimumVolume: 50,
        resetTimeout: 60,
      },
      fallback: { enabled: true, maxEntries: 70, maxBytes: 80 },
      keyPrefix: 'app.v2',
    });
  });

  it('reads cluster nodes and ignores unset or empty variables', () => {
    expect(readRedisEnv({ REDIS_CLUSTER_NODES: 'a:7000,b:7001', REDIS_PASSWORD: '', OTHER: 'x' })).toEqual({
      cluster: {
        nodes: [
          { host: 'a', port: 7000 },
          { host: 'b', port: 7001 },
        ],
      },
    });
    expect(readRedisEnv({})).toEqual({});
  });

  it.each([
    ['yes', true],
    ['YES', true],
    ['1', true],
    ['true', true],
    ['no', false],
    ['0', false],
    ['False', false],
  ])('accepts boolean %s', (value, expected) => {
    expect(readRedisEnv({ REDIS_BREAKER_ENABLED: value }).breaker?.enabled).toBe(expected);
  });

  it.each([
    ['REDIS_BREAKER_ENABLED', 'maybe', /true\/false, 1\/0 or yes\/no/],
    ['REDIS_COMMAND_TIMEOUT', 'abc', /must be an integer from 1 to 600000 ms/],
    ['REDIS_COMMAND_TIMEOUT', '1.5', /integer/],
    ['REDIS_COMMAND_TIMEOUT', '1e3', /integer/],
    ['REDIS_COMMAND_TIMEOUT', '0', /from 1 to 600000/],
    ['REDIS_MAX_RETRIES', '-1', /from 0 to 100/],
    ['REDIS_FALLBACK_MAX_BYTES', '99999999999999999', /integer|from 1/],
    ['REDIS_URL', 'redis+sentinel://h', /use redis:\/\/ or rediss:\/\//],
    ['REDIS_SENTINELS', 'h', /host:port/],
    ['REDIS_SENTINELS', 'h:1,,h:2', /host:port/],
    ['REDIS_CLUSTER_NODES', 'h:99999', /1 to 65535|host:port/],
    ['REDIS_KEY_PREFIX', 'a:b', /letters, digits/],
  ])('%s=%s is rejected naming the variable', (name, value, message) => {
    const err = configError(() => readRedisEnv({ [name]: value }));
    expect(err.field).toMatch(new RegExp(`^${name}`));
    expect(err.message).toContain(name);
    expect(err.message).toMatch(message);
  });

  it('turns TLS on from the TLS file variables, with the file contents as PEM', () => {
    writeFileSync(join(dir, 'ca2.pem'), 'CA TWO');
    const c = client({ url: 'rediss://h' }, { REDIS_TLS_CA_FILE: join(dir, 'ca2.pem') });
    expect(c.redisOptions.tls).toEqual({ ca: Buffer.from('CA TWO') });
  });

  it('names the variable and the path of an unreadable TLS file', () => {
    const path = join(dir, 'missing.pem');
    const err = configError(() => readRedisEnv({ REDIS_TLS_CA_FILE: path }));
    expect(err.field).toBe('REDIS_TLS_CA_FILE');
    expect(err.message).toContain(path);
    expect(err.message).toContain('ENOENT');
    expect(configError(() => readRedisEnv({ REDIS_TLS_KEY_FILE: dir })).message).toContain('EISDIR');
  });

  it('rejects sentinels together with cluster nodes, non-string values and a non-object env', () => {
    expect(
      configError(() => readRedisEnv({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' })).field,
    ).toBe('REDIS_CLUSTER_NODES');
    expect(configError(() => readRedisEnv({ REDIS_PORT: 'x', REDIS_URL: 5 as never })).field).toBe(
      'REDIS_URL',
    );
    expect(configError(() => readRedisEnv(null as never)).field).toBe('env');
  });

  it('never puts REDIS_PASSWORD or the REDIS_URL password in an error', () => {
    const err = configError(() =>
      readRedisEnv({
        REDIS_URL: 'redis://u:Zq9Zq9Zq9@h:0',
        REDIS_PASSWORD: 'Xx7Xx7Xx7',
        REDIS_COMMAND_TIMEOUT: 'Xx7Xx7Xx7',
      }),
    );
    expect(err.message).not.toContain('Zq9Zq9Zq9');
    expect(err.message).not.toContain('Xx7Xx7Xx7');
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true],
    ['LOCALHOST', true],
    ['localhost.', true],
    ['127.0.0.1', true],
    ['127.255.1.2', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['::2', false],
    ['redis.example.com', false],
    ['localhost.example.com', false],
    ['evil.com@127.0.0.1', false],
    ['', false],
  ])('%s -> %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe('REDIS_ENV_VARS and the README', () => {
  const documented = [
    'REDIS_URL',
    'REDIS_USERNAME',
    'REDIS_PASSWORD',
    'REDIS_TLS_CA_FILE',
    'REDIS_TLS_CERT_FILE',
    'REDIS_TLS_KEY_FILE',
    'REDIS_TLS_SERVERNAME',
    'REDIS_TLS_REJECT_UNAUTHORIZED',
    'REDIS_SENTINELS',
    'REDIS_SENTINEL_NAME',
    'REDIS_SENTINEL_PASSWORD',
    'REDIS_CLUSTER_NODES',
    'REDIS_CONNECT_TIMEOUT',
    'REDIS_COMMAND_TIMEOUT',
    'REDIS_MAX_RETRIES',
    'REDIS_MAX_RECONNECT_DELAY',
    'REDIS_HEALTH_CHECK_INTERVAL',
    'REDIS_BREAKER_ENABLED',
    'REDIS_BREAKER_FAILURE_RATE',
    'REDIS_BREAKER_SLOW_CALL_RATE',
    'REDIS_BREAKER_SLOW_CALL_DURATION',
    'REDIS_BREAKER_WINDOW',
    'REDIS_BREAKER_MIN_VOLUME',
    'REDIS_BREAKER_RESET_TIMEOUT',
    'REDIS_FALLBACK_ENABLED',
    'REDIS_FALLBACK_MAX_ENTRIES',
    'REDIS_FALLBACK_MAX_BYTES',
    'REDIS_KEY_PREFIX',
  ];

  it('lists exactly the variables of the design', () => {
    expect(REDIS_ENV_VARS.map((v) => v.name).sort()).toEqual([...documented].sort());
  });

  it('matches the README table row for row', () => {
    const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
    const section = readme.split('<!-- env-table:start -->')[1]?.split('<!-- env-table:end -->')[0] ?? '';
    // Cells are compared trimmed, so Prettier may pad the table as it likes.
    const rows = section
      .split('\n')
      .filter((line) => /^\|\s*`REDIS_/.test(line.trim()))
      .map((line) =>
        line
          .trim()
          .replace(/^\||\|$/g, '')
          .split(/(?<!\\)\|/)
          .map((cell) => cell.trim()),
      );
    expect(rows.map((cells) => cells[0])).toEqual(REDIS_ENV_VARS.map((v) => `\`${v.name}\``));
    expect(rows).toEqual(
      REDIS_ENV_VARS.map((v) => [`\`${v.name}\``, `\`${v.field}\``, v.description, v.default]),
    );
  });
});

describe('config fuzz (RELIABILITY: 0 uncaught exceptions, 0 messages with the password)', () => {
  // Passwords are generated apart from the options and substituted for these tokens afterwards (cheaper
  // than fc.chain); their alphabet never occurs in our fixed text and holds the characters that break URLs.
  const PW = ['PWONE', 'PWTWO'] as const;
  const password = fc.string({
    unit: fc.constantFrom(...'QXZqxz79!@:/%#?$&+= '.split('')),
    minLength: 8,
    maxLength: 20,
  });
  const passwords = fc
    .tuple(password, password)
    .filter(([a, b]) => !a.includes(b) && !b.includes(a))
    .map((pair): string[] => pair);
  function substitute(value: unknown, pws: string[]): unknown {
    if (typeof value === 'string') {
      return value
        .replaceAll(`${PW[0]}ENC`, encodeURIComponent(pws[0]))
        .replaceAll(PW[0], pws[0])
        .replaceAll(PW[1], pws[1]);
    }
    if (Array.isArray(value)) return value.map((v) => substitute(v, pws));
    if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, pws)]));
    }
    return value;
  }

  /** `usual`, except once in `n` runs `rare` (weights on fc.oneof are skewed by depth bias; this is not). */
  const rarely = <T, U>(usual: fc.Arbitrary<T>, rare: fc.Arbitrary<U>, n: number): fc.Arbitrary<T | U> =>
    fc.tuple(fc.integer({ min: 0, max: n - 1 }), usual, rare).map(([k, u, r]) => (k === 0 ? r : u));
  const odd = fc.constantFrom<unknown>(null, '', 'x', '5000', -1, 0, 1.5, NaN, Infinity, true, [], {});
  const maybe = <T>(arb: fc.Arbitrary<T>) => rarely(arb, odd, 50);
  const intish = (min: number, max: number) =>
    maybe(rarely(fc.integer({ min, max }), fc.oneof(fc.integer(), fc.double()), 25));
  const hostArb = rarely(
    fc.constantFrom('localhost', '127.0.0.1', '10.0.0.5', '::1', 'redis.internal'),
    fc.oneof(fc.constantFrom('', 'a b', 'h:1', 'x/y'), fc.string({ maxLength: 8 })),
    6,
  );
  const validUrl = fc
    .tuple(
      fc.constantFrom('redis', 'rediss'),
      fc.constantFrom('', 'app'),
      // A raw password with URL syntax characters in it makes an invalid URL: the odd URLs cover that.
      fc.constantFrom(`${PW[0]}ENC`, ''),
      fc.constantFrom('localhost', '127.0.0.1', '10.0.0.5', '[::1]', 'redis.internal'),
      fc.constantFrom('', ':6379', ':7000'),
      fc.constantFrom('', '/', '/2'),
    )
    .map(([scheme, user, secret, host, port, path]) =>
      secret === ''
        ? `${scheme}://${host}${port}${path}`
        : `${scheme}://${user}:${secret}@${host}${port}${path}`,
    );
  const oddUrl = fc.oneof(
    fc
      .tuple(
        fc.constantFrom('redis', 'rediss', 'http', 'redis+sentinel', 'REDIS', ''),
        fc.constantFrom('', 'app', 'a:b'),
        fc.constantFrom(PW[0], `${PW[0]}ENC`, ''),
        hostArb,
        fc.oneof(
          fc.constant(''),
          fc.integer({ min: -5, max: 70_000 }).map((p) => `:${p}`),
          fc.constant(':x'),
        ),
        fc.constantFrom('', '/', '/2', '/15', '/16', '/x', '?a=b', '#f', '/2/3'),
      )
      .map(([scheme, user, secret, host, port, path]) => {
        const auth = secret === '' ? '' : `${user}:${secret}@`;
        return `${scheme}${scheme ? '://' : ''}${auth}${host.includes(':') ? `[${host}]` : host}${port}${path}`;
      }),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc.string({ maxLength: 30 }),
    fc.constantFrom(PW[0], PW[1]),
  );
  const urlArb = rarely(validUrl, oddUrl, 4);
  const nodes = rarely(
    fc.array(
      fc.oneof(
        fc.record({ host: hostArb, port: intish(1, 65_535) }),
        fc.tuple(hostArb, fc.integer({ min: 1, max: 65_535 })).map(([h, p]) => `${h}:${p}`),
      ),
      { minLength: 1, maxLength: 3 },
    ),
    fc.oneof(fc.constant([]), fc.constant(['h']), fc.constant(['h:0']), fc.constant(['::1:1'])),
    6,
  );
  /** Usually undefined: set once in `1 + rarity` runs. */
  const opt = <T>(arb: fc.Arbitrary<T>, rarity = 1) => rarely(fc.constant(undefined), arb, rarity + 1);
  const clientArb = fc.record(
    {
      url: urlArb,
      host: maybe(hostArb),
      port: intish(1, 65_535),
      username: maybe(fc.constantFrom('app', '')),
      password: maybe(fc.constant(PW[0])),
      db: intish(0, 15),
      tls: maybe(
        fc.record(
          {
            ca: maybe(fc.constant('PEM')),
            servername: maybe(fc.string()),
            rejectUnauthorized: maybe(fc.boolean()),
          },
          { requiredKeys: [] },
        ),
      ),
      sentinels: opt(maybe(nodes), 3),
      name: maybe(fc.constantFrom('mymaster', 'mymaster', '')),
      sentinelPassword: maybe(fc.constant(PW[1])),
      cluster: opt(
        maybe(fc.record({ nodes: maybe(nodes), options: maybe(fc.constant({ scaleReads: 'slave' })) })),
        3,
      ),
      commandTimeout: intish(1, 600_000),
      connectTimeout: intish(1, 600_000),
      maxRetries: intish(0, 100),
      maxReconnectDelay: intish(1, 600_000),
      breaker: maybe(
        fc.record(
          {
            enabled: maybe(fc.boolean()),
            failureRateThreshold: intish(1, 100),
            resetJitter: maybe(rarely(fc.double({ min: 0, max: 1, noNaN: true }), fc.double(), 10)),
            slowCallDuration: intish(1, 600_000),
          },
          { requiredKeys: [] },
        ),
      ),
      pool: maybe(fc.record({ minSize: intish(0, 4), maxSize: intish(4, 10) }, { requiredKeys: [] })),
      healthCheck: maybe(fc.record({ interval: intish(0, 10_000) }, { requiredKeys: [] })),
      fallback: maybe(
        fc.record({ enabled: maybe(fc.boolean()), maxBytes: intish(1, 1_000) }, { requiredKeys: [] }),
      ),
      redisOptions: maybe(
        fc.record({ password: fc.constant(PW[0]), keepAlive: fc.nat() }, { requiredKeys: [] }),
      ),
    },
    { requiredKeys: [] },
  );
  // Most generated clients set few fields, so that valid configs are common too.
  const sparseClient = clientArb.map((c) => {
    const entries = Object.entries(c);
    return Object.fromEntries(entries.filter((_, i) => i % 3 === entries.length % 3));
  });
  const envName = fc.constantFrom(...REDIS_ENV_VARS.map((v) => v.name).filter((n) => !n.endsWith('_FILE')));
  const oddEnv = fc.dictionary(
    envName,
    fc.oneof(
      fc.string({ maxLength: 10 }),
      fc.integer({ min: -10, max: 1_000_000 }).map(String),
      fc.constantFrom('true', 'no', 'maybe', 'a:1,b:2', 'h', '[::1]:1', PW[0], PW[1]),
      oddUrl,
    ),
    { maxKeys: 5 },
  );
  const validEnv = fc.record(
    {
      REDIS_URL: validUrl,
      REDIS_PASSWORD: fc.constant(PW[0]),
      REDIS_SENTINEL_PASSWORD: fc.constant(PW[1]),
      REDIS_COMMAND_TIMEOUT: fc.integer({ min: 1, max: 600_000 }).map(String),
      REDIS_BREAKER_ENABLED: fc.constantFrom('true', 'NO', '1'),
      REDIS_CLUSTER_NODES: fc.constantFrom('a:7000,b:7001', '[::1]:7000'),
      REDIS_KEY_PREFIX: fc.constantFrom('app', 'svc.v2'),
    },
    { requiredKeys: [] },
  );
  const envArb = rarely(validEnv, oddEnv, 3);
  const optionsArb = fc.tuple(
    passwords,
    fc.oneof(clientArb, sparseClient),
    fc.record(
      {
        clients: opt(
          fc.dictionary(
            rarely(fc.constantFrom('cache', 'durable'), fc.constantFrom('bad name', 'default', ''), 10),
            sparseClient,
            { maxKeys: 2 },
          ),
        ),
        keyPrefix: opt(rarely(fc.constant('app'), fc.constantFrom('bad prefix', ''), 20)),
        env: envArb,
        useEnv: opt(fc.boolean()),
        comandTimeout: opt(fc.constant(5), 30),
      },
      { requiredKeys: ['env'] },
    ),
  );

  /** Runs `run`; true when it resolved, false when it threw a clean RedisConfigError. Plain checks: hot loop. */
  function check(run: () => unknown, passwords: string[]): boolean {
    let result: unknown;
    try {
      result = run();
    } catch (err) {
      if (!(err instanceof RedisConfigError))
        throw new Error(`not a RedisConfigError: ${String(err)}`, { cause: err });
      if (err.field === '') throw new Error(`no field named: ${err.message}`, { cause: err });
      for (const pw of passwords) {
        for (const form of [pw, encodeURIComponent(pw)]) {
          if (err.message.includes(form) || err.field.includes(form)) {
            throw new Error(`password ${JSON.stringify(form)} in ${JSON.stringify(err.message)}`, {
              cause: err,
            });
          }
        }
      }
      return false;
    }
    for (const c of (result as { clients?: ResolvedRedisClientConfig[] }).clients ?? []) {
      for (const pw of passwords) {
        if (c.displayUrl.includes(pw)) throw new Error(`password in displayUrl ${c.displayUrl}`);
      }
      const node = c.redisOptions;
      const safe =
        node.autoResendUnfulfilledCommands === false &&
        node.maxRetriesPerRequest === null &&
        node.commandTimeout === c.commandTimeout &&
        node.connectTimeout === c.connectTimeout &&
        (c.cluster
          ? c.cluster.options.enableOfflineQueue === false &&
            c.cluster.options.lazyConnect === true &&
            c.cluster.options.redisOptions === node
          : node.lazyConnect === true &&
            node.enableOfflineQueue === false &&
            typeof node.retryStrategy === 'function');
      if (!safe) throw new Error(`safety fields missing for ${c.name}`);
    }
    return true;
  }

  it('structured options: a resolved config or a RedisConfigError without the password', () => {
    let resolved = 0;
    fc.assert(
      fc.property(optionsArb, ([pws, clientOptions, moduleOptions]) => {
        const options = substitute({ ...clientOptions, ...moduleOptions }, pws) as Record<string, unknown>;
        for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
        if (check(() => resolveRedisConfig(options as RedisClientModuleOptions), pws)) resolved++;
      }),
      { numRuns: 10_000 },
    );
    // The generator must reach the success path too, or the safety-field checks prove nothing.
    expect(resolved).toBeGreaterThan(500);
  });

  it('anything at all: a resolved config or a RedisConfigError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.object({
            key: fc.constantFrom('url', 'port', 'clients', 'breaker', 'cluster', 'tls', 'sentinels', 'env'),
          }),
        ),
        (options) => {
          const input =
            typeof options === 'object' && options !== null && !Array.isArray(options)
              ? { useEnv: false, ...options }
              : options;
          check(() => resolveRedisConfig(input as RedisClientModuleOptions), []);
        },
      ),
      { numRuns: 10_000 },
    );
  });

  it('any environment: options or a RedisConfigError without the password', () => {
    fc.assert(
      fc.property(passwords, envArb, (pws, env) => {
        const withSecrets = substitute(
          { ...env, REDIS_PASSWORD: pws[0], REDIS_SENTINEL_PASSWORD: pws[1] },
          pws,
        ) as Record<string, string>;
        check(() => readRedisEnv(withSecrets), pws);
        check(() => resolveRedisConfig({ env: withSecrets }), pws);
      }),
      { numRuns: 10_000 },
    );
  });

  it('every out-of-range or mistyped number is rejected naming its field', () => {
    const limits: Array<[string, number, number]> = [
      ['commandTimeout', 1, 600_000],
      ['connectTimeout', 1, 600_000],
      ['maxRetries', 0, 100],
      ['maxReconnectDelay', 1, 600_000],
      ['port', 1, 65_535],
      ['db', 0, 15],
      ['breaker.failureRateThreshold', 1, 100],
      ['breaker.slowCallRateThreshold', 1, 100],
      ['breaker.slowCallDuration', 1, 600_000],
      ['breaker.window', 1, 3_600_000],
      ['breaker.minimumVolume', 1, 1_000_000],
      ['breaker.resetTimeout', 1, 3_600_000],
      ['breaker.maxHalfOpenTime', 1, 3_600_000],
      ['healthCheck.interval', 0, 3_600_000],
      ['healthCheck.timeout', 1, 600_000],
      ['healthCheck.sampleSize', 1, 10_000],
      ['healthCheck.reconnectAfter', 0, 1_000],
      ['pool.minSize', 0, 1_000],
      ['pool.maxSize', 1, 1_000],
      ['pool.acquireTimeout', 1, 600_000],
      ['pool.idleTimeout', 1, 86_400_000],
      ['pool.reapInterval', 1, 3_600_000],
      ['pool.validateAfterIdle', 0, 86_400_000],
      ['fallback.maxEntries', 1, 100_000_000],
      ['fallback.maxBytes', 1, 17_179_869_184],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...limits).chain(([path, min, max]) =>
          fc.tuple(
            fc.constant(path),
            fc.oneof(
              fc.integer({ min: 1, max: 1_000_000 }).map((d) => min - d),
              fc.integer({ min: 1, max: 1_000_000 }).map((d) => max + d),
              fc.double({ noNaN: true }).filter((n) => !Number.isInteger(n)),
              fc.constantFrom(NaN, Infinity, -Infinity, '5', null, true, [], {}),
            ),
          ),
        ),
        fc.constantFrom('', 'clients.cache.'),
        ([path, value], prefix) => {
          const target: Record<string, unknown> = {};
          const [head, tail] = path.split('.');
          if (tail) target[head] = { [tail]: value };
          else target[head] = value;
          const options = prefix ? { clients: { cache: target } } : target;
          const err = configError(() => resolve(options as RedisClientModuleOptions));
          expect(err.field).toBe(prefix + path);
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
