import { RedisUnavailableError, type RedisEventMap } from '@redwing/redis';
import type { Cluster } from 'ioredis';
import { RedisCluster, RedisSentinel, RedisServer } from '../../../test/harness';
import { bootRedisModule, sleep, timed, waitFor } from './helpers';
import { ioredisMajor } from '../src/ioredis-compat';

describe('TLS (rediss://)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({ tls: true });
  });
  afterAll(() => server?.stop());

  it('connects with the test CA and verifies the certificate', async () => {
    const { module, manager } = await bootRedisModule({ url: server.url(), tls: { ca: server.tls!.ca } });
    const client = manager.get();
    expect(await client.waitUntilReady(5_000)).toBe(true);
    expect(client.url.startsWith('rediss://')).toBe(true);
    expect(await client.command.set('tls', 'ok')).toBe('OK');
    await module.close();
  });

  it('connects with a client certificate (mutual TLS)', async () => {
    const { module, manager } = await bootRedisModule({
      url: server.url(),
      tls: {
        ca: server.tls!.ca,
        cert: server.tls!.clientCert,
        key: server.tls!.clientKey,
        servername: 'localhost',
      },
    });
    expect(await manager.get().waitUntilReady(5_000)).toBe(true);
    await module.close();
  });

  it('refuses an unverified certificate unless explicitly allowed, and audits the opt-out', async () => {
    const refused = await bootRedisModule({ url: server.url(), connectTimeout: 1_000 });
    const client = refused.manager.get();
    expect(await client.waitUntilReady(1_500)).toBe(false);
    expect(client.getHealth().lastError).toMatch(/certificate|self.signed|unable to verify/i);
    await expect(client.command.get('k')).rejects.toBeInstanceOf(RedisUnavailableError);
    await refused.module.close();

    const audits: Array<RedisEventMap['audit']> = [];
    const allowed = await bootRedisModule({ url: server.url(), tls: { rejectUnauthorized: false } }, (m) =>
      m.events.on('audit', (e) => audits.push(e)),
    );
    expect(await allowed.manager.get().waitUntilReady(5_000)).toBe(true);
    expect(audits).toEqual([{ client: 'default', message: expect.stringMatching(/verification is off/) }]);
    await allowed.module.close();
  });
});

describe('ACL users', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({
      requirepass: 'admin-pass-123',
      users: [{ name: 'app', password: 'app-pass-456', rules: ['~app:*', '&app:*', '+@all', '-@dangerous'] }],
    });
  });
  afterAll(() => server?.stop());

  it('authenticates as the ACL user and surfaces NOPERM as a clear reply error, not an outage', async () => {
    const { module, manager } = await bootRedisModule({
      url: server.url({ username: 'app', password: 'app-pass-456' }),
      redisOptions: { enableReadyCheck: false }, // INFO is @dangerous
    });
    const client = manager.get();
    expect(await client.waitUntilReady(5_000)).toBe(true);
    expect(await client.command.set('app:1', 'v')).toBe('OK');
    await expect(client.command.set('other:1', 'v')).rejects.toThrow(/NOPERM/);
    await expect(client.command.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(client.command.flushall()).rejects.toThrow(/NOPERM/);
    await expect(client.command.config('GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
    expect(client.getBreakerState()).toBe('closed');
    expect(client.stats().counters.replyErrors).toBe(4);
    expect(JSON.stringify(manager.getHealth())).not.toContain('app-pass-456');
    await module.close();
  });

  it('reports a wrong password without printing it', async () => {
    const { module, manager } = await bootRedisModule({
      url: server.url({ username: 'app', password: 'wrong-pass-789' }),
      redisOptions: { enableReadyCheck: false },
    });
    const client = manager.get();
    if (ioredisMajor() === 5) {
      // ioredis 5 (enableReadyCheck off) reports the connection as ready and never emits the AUTH error:
      // health can only say it is failing (docs/compatibility.md, "A wrong password").
      await waitFor('failed health checks', 5_000, () => client.getHealth().consecutiveFailures >= 2);
      expect(client.getHealth().status).not.toBe('up');
    } else {
      // The first failed check may say "connection reconnecting" before the auth error arrives; what counts
      // is that health comes to name it.
      const named = await waitFor(
        'the auth error in health',
        5_000,
        () => /WRONGPASS|invalid username-password/i.exec(client.getHealth().lastError ?? '')?.[0],
        { details: () => JSON.stringify(client.getHealth()) },
      );
      expect(named).toMatch(/WRONGPASS|invalid username-password/i);
    }
    expect(JSON.stringify(manager.getHealth())).not.toContain('wrong-pass-789');
    await module.close();
  });
});

describe('Sentinel failover', () => {
  let sentinel: RedisSentinel;
  const downAfter = 1_000;
  const failoverTimeout = 5_000;
  beforeAll(async () => {
    sentinel = await RedisSentinel.start({ downAfter, failoverTimeout });
  }, 60_000);
  afterAll(() => sentinel?.stop());

  it('writes succeed again within down-after + failover + 5 s, with no READONLY errors after that', async () => {
    const { module, manager } = await bootRedisModule({
      sentinels: sentinel.sentinelAddresses(),
      name: sentinel.masterName,
      commandTimeout: 500,
      maxReconnectDelay: 200,
    });
    const client = manager.get();
    expect(await client.waitUntilReady(10_000)).toBe(true);
    expect(client.topology).toBe('sentinel');
    await client.command.set('before', '1');

    const oldPort = await sentinel.killMaster();
    const killedAt = Date.now();
    const results: Array<{ at: number; ok: boolean; error?: string }> = [];
    let recoveredAt = 0;
    const deadline = killedAt + downAfter + failoverTimeout + 5_000;
    for (let i = 0; Date.now() < deadline; i++) {
      const r = await timed(client.command.set(`k${i}`, String(i)));
      results.push({ at: Date.now(), ok: r.ok, error: r.error?.message });
      if (r.ok && !recoveredAt) recoveredAt = Date.now();
      if (recoveredAt && Date.now() - recoveredAt > 1_000) break;
      await sleep(20);
    }
    expect(recoveredAt).toBeGreaterThan(0);
    expect(recoveredAt - killedAt).toBeLessThanOrEqual(downAfter + failoverTimeout + 5_000);
    const afterRecovery = results.filter((r) => r.at > recoveredAt);
    expect(afterRecovery.length).toBeGreaterThan(10);
    expect(afterRecovery.filter((r) => !r.ok)).toEqual([]);
    expect(results.filter((r) => /READONLY/.test(r.error ?? '') && r.at > recoveredAt)).toEqual([]);
    expect(await sentinel.currentMasterPort()).not.toBe(oldPort);
    await module.close();
  }, 60_000);
});

describe('Cluster (3 masters + 3 replicas)', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(() => cluster?.stop());

  it('runs commands across slots, hash-tagged multi-key commands, and health on the cluster', async () => {
    // Functional, not a fault test: the harness's 300 ms command timeout timed out a first SET to a node on a
    // loaded CI run (Node 24 step).
    const { module, manager } = await bootRedisModule({
      cluster: { nodes: cluster.seeds() },
      commandTimeout: 2_000,
    });
    const client = manager.get();
    expect(await client.waitUntilReady(10_000)).toBe(true);
    expect(client.topology).toBe('cluster');
    const redis = client.command as Cluster;
    for (let i = 0; i < 100; i++) await redis.set(`key:${i}`, String(i));
    expect(await redis.get('key:42')).toBe('42');
    await redis.mset('{user:1}:a', '1', '{user:1}:b', '2');
    expect(await redis.mget('{user:1}:a', '{user:1}:b')).toEqual(['1', '2']);
    await waitFor('health up', 5_000, () => client.getHealth().status === 'up');
    await module.close();
  });

  it('a node socket that emits a second error does not end the process (ioredis listens with once)', async () => {
    const { module, manager } = await bootRedisModule({
      cluster: { nodes: cluster.seeds() },
      commandTimeout: 2_000,
    });
    try {
      const client = manager.get();
      expect(await client.waitUntilReady(10_000)).toBe(true);
      const redis = client.command as Cluster;
      await redis.set('guard:k', 'v'); // the key's node connection exists and is connected
      const nodes = redis.nodes('master');
      expect(nodes.length).toBe(3);
      let sockets = 0;
      for (const node of nodes) {
        const stream = (node as unknown as { stream?: NodeJS.EventEmitter }).stream;
        if (!stream) continue; // a node no command has reached yet has no socket
        sockets++;
        expect(() => {
          stream.emit('error', new Error('first'));
          stream.emit('error', new Error('second'));
        }).not.toThrow();
      }
      expect(sockets).toBeGreaterThanOrEqual(1);
      await waitFor(
        'a command answers again',
        10_000,
        async () => (await redis.set('guard:k', 'w').catch(() => null)) === 'OK',
      );
    } finally {
      await module.close();
    }
  });

  it('keeps serving with 0 CROSSSLOT errors and 0 failures while a slot moves under load', async () => {
    const { module, manager } = await bootRedisModule({
      cluster: { nodes: cluster.seeds() },
      commandTimeout: 1_000,
    });
    const client = manager.get();
    expect(await client.waitUntilReady(10_000)).toBe(true);
    const redis = client.command as Cluster;
    // Keys sharing one hash tag live in one slot; that slot is the one moved.
    const tag = '{moving}';
    const slot = Number(await redis.cluster('KEYSLOT', tag));
    let stop = false;
    const errors: string[] = [];
    let ops = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 50_000; i++) {
        const key = `${tag}:${w}:${i % 50}`;
        try {
          await redis.set(key, String(i));
          await redis.mget(`${tag}:${w}:0`, key);
          ops += 2;
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 10 }, (_, w) => worker(w)));
    await sleep(200);
    const moved = await cluster.moveSlot(slot);
    await sleep(300);
    const movedBack = await cluster.moveSlot(slot);
    await sleep(200);
    stop = true;
    await load;
    expect(moved.to).not.toBe(moved.from);
    expect(movedBack.to).not.toBe(movedBack.from);
    expect(ops).toBeGreaterThan(500);
    expect(errors.filter((e) => /CROSSSLOT/.test(e))).toEqual([]);
    expect(errors).toEqual([]);
    await module.close();
  }, 60_000);
});
