// defineScripts() against real Redis, standalone and Cluster, through a managed (hooked) connection:
// the EVALSHA -> NOSCRIPT -> EVAL fallback, key-count checking, negative reply codes, and registration
// while an auto-pipeline is pending.
import type { TestingModule } from '@nestjs/testing';
import {
  defineScripts,
  luaScript,
  RedisScriptError,
  type ManagedRedisClient,
  type RedisClientModuleOptions,
  type RedisConnection,
} from '@redwing/redis';
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { bootRedisModule } from './helpers';

/** Echoes ARGV[1] after touching KEYS[1] (so Cluster routes it by the key). */
const echoScript = luaScript<string>({
  name: 'testEcho',
  numberOfKeys: 1,
  lua: `redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]`,
});

/** Returns ARGV[1] as an integer, alone or as the first element of an array (ARGV[2] = 'array'). */
const codeScript = luaScript<number | [number, string]>({
  name: 'testCode',
  numberOfKeys: 2,
  lua: `
    local code = tonumber(ARGV[1])
    if ARGV[2] == 'array' then return { code, 'detail' } end
    return code`,
  codes: { [-1]: 'the lock is held by another owner', [-2]: 'the lock expired' },
});

/** The same script without a codes table: negative replies are plain data. */
const uncheckedScript = luaScript<number>({
  name: 'testUnchecked',
  numberOfKeys: 0,
  lua: `return tonumber(ARGV[1])`,
});

const sha = (lua: string) => createHash('sha1').update(lua).digest('hex');

interface Topology {
  name: string;
  /** Starts the server(s) and returns the module options that reach them. */
  start(): Promise<RedisClientModuleOptions>;
}

const topologies: Topology[] = [
  {
    name: 'standalone',
    async start() {
      const server = await RedisServer.start();
      return { url: server.url(), redisOptions: { enableAutoPipelining: true } };
    },
  },
  {
    name: 'cluster',
    async start() {
      const cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 0 });
      return { cluster: { nodes: cluster.seeds(), options: { enableAutoPipelining: true } } };
    },
  },
];

afterAll(() => stopAll());

describe.each(topologies)('defineScripts on $name', (topology) => {
  let module: TestingModule;
  let client: ManagedRedisClient;
  let conn: RedisConnection;
  let n = 0;
  const key = (what: string) => `{s${++n}}:${what}`;

  /** Every master (one for standalone): where scripts are cached. */
  const masters = (): Array<Redis | Cluster> =>
    'nodes' in conn && typeof conn.nodes === 'function' ? (conn as Cluster).nodes('master') : [conn];
  const cachedOn = async (lua: string) =>
    (await Promise.all(masters().map((m) => m.script('EXISTS', sha(lua)) as Promise<number[]>))).reduce(
      (sum, [exists]) => sum + exists,
      0,
    );
  const flushScripts = () => Promise.all(masters().map((m) => m.script('FLUSH')));

  beforeAll(async () => {
    const options = await topology.start();
    const booted = await bootRedisModule({ ...options, commandTimeout: 2_000 });
    module = booted.module;
    client = booted.manager.get();
    expect(await client.waitUntilReady(10_000)).toBe(true);
    conn = client.connection;
  }, 60_000);

  afterAll(async () => {
    await module?.close();
  });

  it('falls back from EVALSHA to EVAL on NOSCRIPT, and EVAL caches the script again', async () => {
    const scripts = defineScripts(conn, { echo: echoScript });
    await flushScripts();
    expect(await cachedOn(echoScript.lua)).toBe(0);

    const k = key('echo');
    expect(await scripts.echo([k], ['one'])).toBe('one'); // NOSCRIPT, then EVAL
    expect(await cachedOn(echoScript.lua)).toBe(1);
    expect(await scripts.echo([k], ['two'])).toBe('two'); // EVALSHA hits
    expect(await conn.get(k)).toBe('two');

    await flushScripts(); // a restart or failover loses the cache
    expect(await cachedOn(echoScript.lua)).toBe(0);
    expect(await scripts.echo([k], [3])).toBe('3');
    expect(await cachedOn(echoScript.lua)).toBe(1);
    expect(client.stats().counters.replyErrors).toBeGreaterThanOrEqual(2); // the two NOSCRIPT replies
  });

  it('refuses a call with the wrong number of keys before sending anything', async () => {
    const scripts = defineScripts(conn, { echo: echoScript, code: codeScript });
    const sent = client.stats().counters.commands;
    await expect(scripts.echo([], ['x'])).rejects.toThrow(/"testEcho" takes 1 key\(s\), got 0/);
    await expect(scripts.echo([key('a'), key('b')], ['x'])).rejects.toBeInstanceOf(TypeError);
    await expect(scripts.code([key('only-one')], [0])).rejects.toThrow(/takes 2 key\(s\), got 1/);
    expect(client.stats().counters.commands).toBe(sent);
  });

  it('maps negative codes to RedisScriptError with the code and its meaning', async () => {
    const scripts = defineScripts(conn, { code: codeScript, unchecked: uncheckedScript });
    const k1 = key('a');
    const keys = [k1, k1.replace(':a', ':b')];

    expect(await scripts.code(keys, [0])).toBe(0);
    expect(await scripts.code(keys, [7])).toBe(7);
    expect(await scripts.code(keys, [1, 'array'])).toEqual([1, 'detail']);

    const held = await scripts.code(keys, [-1]).catch((e: unknown) => e);
    expect(held).toBeInstanceOf(RedisScriptError);
    expect(held).toMatchObject({
      script: 'testCode',
      code: -1,
      meaning: 'the lock is held by another owner',
    });

    await expect(scripts.code(keys, [-2, 'array'])).rejects.toMatchObject({
      code: -2,
      meaning: 'the lock expired',
    });
    await expect(scripts.code(keys, [-9])).rejects.toMatchObject({
      name: 'RedisScriptError',
      code: -9,
      meaning: 'an undocumented failure code',
    });
    // Without a codes table a negative reply is data.
    expect(await scripts.unchecked([], [-1])).toBe(-1);
  });

  it('registers and calls scripts while an auto-pipeline is pending', async () => {
    const k = key('pipelined');
    await conn.set(k, 'v');
    // Fired without awaiting: they sit in the auto-pipeline queue until the next tick.
    const gets = Array.from({ length: 20 }, () => conn.get(k));
    expect((conn as { autoPipelineQueueSize?: number }).autoPipelineQueueSize).toBeGreaterThan(0);
    let scripts!: ReturnType<typeof defineScripts<{ echo: typeof echoScript }>>;
    expect(() => {
      scripts = defineScripts(conn, { echo: echoScript });
    }).not.toThrow();
    const echoed = scripts.echo([key('echo')], ['during']);
    expect(await Promise.all(gets)).toEqual(Array.from({ length: 20 }, () => 'v'));
    expect(await echoed).toBe('during');
  });
});
