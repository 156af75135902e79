// Pins the ioredis internals @redwing/redis relies on (command-hook.ts, managed-redis-client.ts), against a
// real redis-server, on whichever ioredis the run resolves: 6 in `npm test`, 5 in scripts/ioredis5-suite.js
// (both CI steps). When a future ioredis (or a 5.x below the peer floor) changes one of these, this file
// names the broken assumption instead of a chaos test timing out somewhere else.
//
// What is pinned (all read or replaced by the command hook or the client):
//   - `sendCommand(command, stream?)` is an instance-replaceable method every command passes through, with
//     `command.name`, `resolve`/`reject` (replaceable before the write), `promise`, `setTimeout(ms)`;
//   - status values around a connect: `connect` (handshake) before `ready`, `end` after disconnect;
//   - the reply/rejection texts classify() maps: 'Command timed out', 'enableOfflineQueue options is false',
//     'Connection is closed.', a ReplyError named 'ReplyError';
//   - `prevCommandQueue` holds `{ command }` items for commands written but unanswered when 'close' fires;
//   - `stream.bytesRead` on the live socket, `connector.stream` and `setStatus()` (endBetweenReconnects);
//   - `Cluster#sendCommand(command, stream, node)` is replaceable too and sees every cluster command.
import { Cluster, Command, Redis } from 'ioredis';
import { RedisCluster, RedisServer, stopAll, waitFor } from '../../../test/harness';
import { applyIoredisCompat, ioredisMajor, KEY_NOT_FIRST_COMMANDS } from './ioredis-compat';

type Hooked = Command & {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  promise: Promise<unknown>;
};
type Send = (command: Hooked, stream?: unknown, node?: unknown) => unknown;

const ioredisVersion = (require('ioredis/package.json') as { version: string }).version;

describe(`ioredis internals the hook relies on (ioredis ${ioredisVersion})`, () => {
  let server: RedisServer;
  const conns: Array<Redis | Cluster> = [];
  const track = <T extends Redis | Cluster>(c: T): T => {
    conns.push(c);
    c.on('error', () => undefined);
    return c;
  };

  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(() => {
    for (const c of conns.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await server?.stop();
    await stopAll();
  });

  it('routes every command through an instance-replaceable sendCommand, with the fields the hook uses', async () => {
    const conn = track(new Redis(server.url(), { lazyConnect: true, enableOfflineQueue: false }));
    const original = conn.sendCommand as unknown as Send;
    const seen: Array<{ name: string; status: string; fields: boolean }> = [];
    const hooked: Send = (command, stream) => {
      seen.push({
        name: command.name,
        status: conn.status,
        fields:
          typeof command.resolve === 'function' &&
          typeof command.reject === 'function' &&
          command.promise instanceof Promise &&
          typeof (command as unknown as { setTimeout?: unknown }).setTimeout === 'function',
      });
      if (command.name === 'get') {
        // Replace the settle functions before the write, as track() does.
        const resolve = command.resolve;
        command.resolve = (v: unknown) => resolve(`wrapped:${String(v)}`);
      }
      return original.call(conn, command, stream);
    };
    conn.sendCommand = hooked as unknown as typeof conn.sendCommand;
    await conn.connect();
    expect(conn.status).toBe('ready');
    await conn.set('k', 'v');
    expect(await conn.get('k')).toBe('wrapped:v');
    // The ready check (INFO) ran through the hook while the status was 'connect' (the handshake window).
    expect(seen.find((s) => s.name === 'info')).toEqual({ name: 'info', status: 'connect', fields: true });
    expect(seen.filter((s) => s.name === 'set' || s.name === 'get')).toEqual([
      { name: 'set', status: 'ready', fields: true },
      { name: 'get', status: 'ready', fields: true },
    ]);
    const pipelined: string[] = [];
    conn.sendCommand = ((command: Hooked, stream?: unknown) => {
      pipelined.push(`${command.name}:${stream ? 'stream' : 'none'}`);
      return original.call(conn, command, stream);
    }) as unknown as typeof conn.sendCommand;
    // MULTI/pipelines pass their commands with a stream argument (one admission per pipeline).
    await conn.multi().set('a', '1').get('a').exec();
    expect(pipelined).toEqual(['multi:stream', 'set:stream', 'get:stream', 'exec:stream']);
  });

  it('rejects with the texts classify() maps: timeout, not writable, connection closed, ReplyError', async () => {
    const conn = track(new Redis(server.url(), { commandTimeout: 100, enableOfflineQueue: false }));
    await waitFor('ready', 5_000, () => conn.status === 'ready');
    const reply = await conn.call('NOSUCHCOMMAND').catch((e: Error) => e);
    expect((reply as Error).name).toBe('ReplyError');
    server.pause();
    try {
      const timedOut = await conn.get('k').catch((e: Error) => e);
      expect((timedOut as Error).message).toBe('Command timed out');
      // Written and unanswered when the socket closes: on 'close' they sit in prevCommandQueue as { command }.
      const pending = conn.get('pending').catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 20));
      const queued = await new Promise<string[]>((resolve) => {
        conn.once('close', () => {
          // Drained as the hook's onClose() does: shift() until empty, rejecting each command.
          const q = (
            conn as unknown as { prevCommandQueue?: { shift(): { command: Hooked } | undefined } | null }
          ).prevCommandQueue;
          const names: string[] = [];
          for (let item = q?.shift(); item; item = q?.shift()) {
            names.push(item.command.name);
            item.command.reject(new Error('Connection is closed.'));
          }
          resolve(names);
        });
        (conn as unknown as { stream: { destroy(): void } }).stream.destroy();
      });
      expect(queued).toContain('get');
      expect(((await pending) as Error).message).toBe('Connection is closed.');
      // Not ready and no offline queue: refused with ioredis's "not writable" text.
      const refused = await conn.get('k').catch((e: Error) => e);
      expect((refused as Error).message).toContain('enableOfflineQueue options is false');
    } finally {
      server.resume();
    }
  });

  it('exposes stream.bytesRead, connector.stream and setStatus (stuck-connection probe, end between reconnects)', async () => {
    const conn = track(new Redis(server.url()));
    await waitFor('ready', 5_000, () => conn.status === 'ready');
    const before = (conn as unknown as { stream: { bytesRead: number } }).stream.bytesRead;
    await conn.ping();
    expect((conn as unknown as { stream: { bytesRead: number } }).stream.bytesRead).toBeGreaterThan(before);
    const internals = conn as unknown as {
      connector: { stream?: { destroyed?: boolean } };
      setStatus(status: string): void;
    };
    expect(internals.connector.stream).toBe((conn as unknown as { stream: unknown }).stream);
    expect(typeof internals.setStatus).toBe('function');
    conn.disconnect();
    await waitFor('end', 5_000, () => conn.status === 'end');
  });

  it('reads the ioredis major in use', () => {
    expect(ioredisMajor()).toBe(Number(ioredisVersion.split('.')[0]));
  });

  it('Cluster + enableAutoPipelining: applyIoredisCompat keeps script calls out of a pending pipeline of another slot', async () => {
    const cluster = await RedisCluster.start();
    try {
      const conn = track(new Cluster(cluster.seeds(), { enableAutoPipelining: true }));
      await waitFor('cluster ready', 10_000, () => conn.status === 'ready');
      applyIoredisCompat(conn);
      const ignored = (conn.options as { autoPipeliningIgnoredCommands?: string[] })
        .autoPipeliningIgnoredCommands;
      // ioredis 6 routes the auto-pipeline by the command's key; only 5 needs the exemption.
      expect(ignored ?? []).toEqual(ioredisMajor() === 5 ? [...KEY_NOT_FIRST_COMMANDS] : []);
      applyIoredisCompat(conn); // idempotent
      expect(
        (conn.options as { autoPipeliningIgnoredCommands?: string[] }).autoPipeliningIgnoredCommands ?? [],
      ).toEqual(ioredisMajor() === 5 ? [...KEY_NOT_FIRST_COMMANDS] : []);
      await conn.set('{a}k', 'v');
      // Pending in the auto-pipeline until the next tick: GETs on slot {a} and scripts on keys spread over
      // every master. On ioredis 5 without the exemption the scripts are grouped by the slot of the script
      // text, so keys of different masters share one pipeline and it fails as a whole.
      const gets = Array.from({ length: 10 }, () => conn.get('{a}k'));
      const evals = Array.from({ length: 12 }, (_, i) =>
        conn.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, `{b${i}}k`, 'x'),
      );
      expect(await Promise.all(gets)).toEqual(Array.from({ length: 10 }, () => 'v'));
      expect(await Promise.all(evals)).toEqual(Array.from({ length: 12 }, () => 'OK'));
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  it('Cluster: sendCommand(command, stream, node) is replaceable and sees every command', async () => {
    const cluster = await RedisCluster.start();
    try {
      const conn = track(new Cluster(cluster.seeds(), { enableOfflineQueue: false, lazyConnect: true }));
      expect(conn).toBeInstanceOf(Cluster);
      const original = conn.sendCommand as unknown as Send;
      const names: string[] = [];
      conn.sendCommand = ((command: Hooked, stream?: unknown, node?: unknown) => {
        names.push(command.name);
        return original.call(conn, command, stream, node);
      }) as unknown as typeof conn.sendCommand;
      await conn.connect();
      await conn.set('{k}a', '1');
      expect(await conn.get('{k}a')).toBe('1');
      expect(names).toEqual(expect.arrayContaining(['set', 'get']));
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});
