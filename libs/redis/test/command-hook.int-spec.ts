// The command hook observes commands without changing them (command-hook.ts): every Command it tracks ends
// with the same own properties as the same command sent by a plain ioredis client, and with the `resolve`
// (and, standalone, `reject`) ioredis gave it. Mutating commands cost GC and write time in the benches
// (issue 15). And because it does not wrap `reject`, the typed errors must come from the hook's own
// rejections: pipelined and auto-pipelined commands still see RedisCommandTimeoutError /
// RedisConnectionLostError, not ioredis's raw ones.
import type { TestingModule } from '@nestjs/testing';
import {
  RedisCommandTimeoutError,
  RedisConnectionLostError,
  type ManagedRedisClient,
  type RedisClientManager,
  type RedisClientModuleOptions,
  type RedisEventMap,
} from '@redwing/redis';
import { Cluster, Command, Redis } from 'ioredis';
import { FaultProxy, RedisCluster, RedisServer, stopAll } from '../../../test/harness';
import { bootRedisModule, sleep, timed, waitFor } from './helpers';

afterAll(() => stopAll());

type Conn = Redis | Cluster;

interface Topology {
  name: 'standalone' | 'cluster';
  /** Starts the server(s); returns the module options and a plain ioredis client for the same target. */
  start(): Promise<{ options: RedisClientModuleOptions; raw: () => Conn }>;
}

const topologies: Topology[] = [
  {
    name: 'standalone',
    async start() {
      const server = await RedisServer.start();
      return {
        options: { url: server.url() },
        raw: () => new Redis({ host: server.host, port: server.port, commandTimeout: 1_000 }),
      };
    },
  },
  {
    name: 'cluster',
    async start() {
      const cluster = await RedisCluster.start({ masters: 3, replicasPerMaster: 0 });
      return {
        options: { cluster: { nodes: cluster.seeds() } },
        raw: () => new Cluster(cluster.seeds(), { redisOptions: { commandTimeout: 1_000 } }),
      };
    },
  },
];

/** What a mutation of the command would change: its own properties and settle functions. */
function shape(command: Command) {
  return {
    names: Object.getOwnPropertyNames(command).sort(),
    symbols: Object.getOwnPropertySymbols(command).map(String),
  };
}

/** Pipeline and Multi have `sendCommand` at runtime (ioredis 5 and 6) but not in their types. */
function queue(batch: object, command: Command): void {
  (batch as { sendCommand(c: Command): unknown }).sendCommand(command);
}

/** The ways a command reaches the connection's `sendCommand`. */
const sends: Array<{ via: string; send(conn: Conn, command: Command): Promise<unknown> }> = [
  { via: 'a direct call', send: (conn, command) => conn.sendCommand(command) as Promise<unknown> },
  {
    via: 'a pipeline',
    send: async (conn, command) => {
      const pipeline = conn.pipeline();
      queue(pipeline, command);
      const [[err, value]] = (await pipeline.exec())!;
      if (err) throw err;
      return value;
    },
  },
  {
    via: 'a MULTI',
    send: async (conn, command) => {
      const multi = conn.multi();
      queue(multi, command);
      const [[err, value]] = (await multi.exec())!;
      if (err) throw err;
      return value;
    },
  },
];

describe.each(topologies)('command hook on $name', (topology) => {
  let module: TestingModule;
  let manager: RedisClientManager;
  let client: ManagedRedisClient;
  let raw: Conn;
  let n = 0;

  beforeAll(async () => {
    const started = await topology.start();
    ({ module, manager } = await bootRedisModule(started.options));
    client = manager.get();
    expect(await client.waitUntilReady(10_000)).toBe(true);
    raw = started.raw();
    await raw.ping();
  }, 60_000);

  afterAll(async () => {
    raw?.disconnect();
    await module?.close();
  });

  it.each(sends)(
    'leaves a command sent through $via as ioredis left it, and still tracks it',
    async ({ send }) => {
      const key = `{hook}:${++n}`;
      await raw.set(key, 'v');
      const seen: Array<RedisEventMap['command']> = [];
      const off = manager.events.on('command', (e) => seen.push(e));
      const commandsBefore = client.stats().counters.commands;

      const ours = new Command('get', [key], { replyEncoding: 'utf8' });
      const resolve = ours.resolve;
      const reject = ours.reject;
      expect(await send(client.command, ours)).toBe('v');
      const baseline = new Command('get', [key], { replyEncoding: 'utf8' });
      expect(await send(raw, baseline)).toBe('v');
      off();

      // Tracked: counted and reported as one GET that succeeded.
      expect(seen.filter((e) => e.command === 'get')).toEqual([
        expect.objectContaining({ client: 'default', command: 'get', outcome: 'ok' }),
      ]);
      expect(client.stats().counters.commands - commandsBefore).toBeGreaterThanOrEqual(1);
      // Untouched: the same own properties as ioredis alone gives it, and ioredis's settle functions.
      expect(shape(ours)).toEqual(shape(baseline));
      expect(shape(ours).symbols).toEqual([]);
      expect(ours.resolve).toBe(resolve);
      // Cluster replaces `reject` itself (its redirection handling), for the raw client too.
      if (topology.name === 'standalone') expect(ours.reject).toBe(reject);
    },
  );

  it('leaves a command that times out untouched, and rejects it with RedisCommandTimeoutError', async () => {
    const key = `{hook}:${++n}`;
    const ours = new Command('blpop', [key, '0']);
    const resolve = ours.resolve;
    const reject = ours.reject;
    const outcome = await timed(client.command.sendCommand(ours) as Promise<unknown>);
    await raw.lpush(key, 'x'); // unblock the BLPOP on the server, so the connection serves the next test
    expect(outcome.error).toBeInstanceOf(RedisCommandTimeoutError);
    expect(shape(ours).symbols).toEqual([]);
    expect(shape(ours).names).not.toContain('_commandTimeoutTimer');
    expect(ours.resolve).toBe(resolve);
    if (topology.name === 'standalone') expect(ours.reject).toBe(reject);
    expect(client.stats().counters.timeouts).toBeGreaterThanOrEqual(1);
  });
});

describe('typed errors reach pipelined commands (standalone)', () => {
  const commandTimeout = 300;
  let server: RedisServer;
  let proxy: FaultProxy;

  beforeEach(async () => {
    server = await RedisServer.start();
    proxy = await FaultProxy.start(server);
  });
  afterEach(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it('rejects auto-pipelined commands that get no reply with RedisCommandTimeoutError', async () => {
    const { module, manager } = await bootRedisModule({
      url: `redis://127.0.0.1:${proxy.port}`,
      commandTimeout,
      healthCheck: { interval: 0 },
      redisOptions: { enableAutoPipelining: true },
    });
    const client = manager.get();
    expect(await client.waitUntilReady(5_000)).toBe(true);
    expect(await client.command.get('warm')).toBeNull();
    proxy.setMode('blackhole');
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => timed(client.command.get(`k${i}`))),
    );
    for (const r of results) {
      expect(r.error).toBeInstanceOf(RedisCommandTimeoutError);
      expect(r.ms).toBeLessThanOrEqual(commandTimeout + 100);
    }
    expect(client.stats().counters.timeouts).toBe(30);
    await module.close();
  });

  it('rejects the unanswered rest of a pipeline cut by a reset with RedisConnectionLostError', async () => {
    const { module, manager } = await bootRedisModule({
      url: `redis://127.0.0.1:${proxy.port}`,
      commandTimeout: 5_000,
      healthCheck: { interval: 0 },
      maxReconnectDelay: 50,
    });
    const client = manager.get();
    expect(await client.waitUntilReady(5_000)).toBe(true);
    await client.command.set('big', 'x'.repeat(4_096));
    // Replies trickle in 256-byte slices, so the pipeline is answered in part when the socket is reset:
    // ioredis aborts the rest itself (with its untyped AbortError) unless the hook got there first.
    proxy.setChunkSize(256);
    const commands = Array.from({ length: 20 }, () => new Command('get', ['big']));
    const pipeline = client.command.pipeline();
    for (const c of commands) queue(pipeline, c);
    const exec = pipeline.exec();
    const outcomes = commands.map((c) => timed(c.promise as Promise<unknown>));
    // Reset the moment the first reply resolves (a fast machine had read all 20 before a polling test reset).
    let answered = 0;
    for (const c of commands)
      void c.promise.then(
        () => {
          if (++answered === 1) proxy.setMode('reset');
        },
        () => undefined,
      );
    await waitFor('the first replies', 5_000, () => answered >= 1);
    const results = await Promise.all(outcomes);
    await exec;

    const failed = results.filter((r) => !r.ok);
    expect(answered).toBeLessThan(20);
    expect(failed.length).toBe(20 - answered);
    for (const r of failed) expect(r.error).toBeInstanceOf(RedisConnectionLostError);
    await sleep(50);
    await module.close();
  });
});
