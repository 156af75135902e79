// SessionService against real Redis, on a standalone server and on a 3-master/3-replica Cluster: round trip,
// no plaintext at rest (raw DUMP of every key), 50 concurrent field updates, tamper (bit flip, blob moved to
// another id) and key rotation, per-user index and "log out everywhere" with cross-instance revocation events,
// and every Lua script's outcomes; a revocation-channel SUBSCRIBE Redis refuses (ACL) is sent again until
// accepted, at start and after a reconnect.
import type { Cluster, Redis } from 'ioredis';
import { SessionNotFoundError, SessionValueTooLargeError, type SessionRevokedEvent } from '@redwing/session';
import { RedisCluster, RedisServer, stopAll, waitFor } from '../../../test/harness';
import { bootSessions, KEY_1, KEY_2, type SessionInstance, type Topology } from './helpers';

afterAll(() => stopAll());

const MARKER = 'PLAINTEXT-MARKER-7f3a9c';

/** Every key of the session namespace on every master, with its raw DUMP serialization. */
async function dumpAll(raw: Redis | Cluster): Promise<Array<{ key: string; dump: Buffer }>> {
  const nodes: Redis[] =
    'nodes' in raw && typeof raw.nodes === 'function' ? (raw as Cluster).nodes('master') : [raw as Redis];
  const out: Array<{ key: string; dump: Buffer }> = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', 'redwing:session:*', 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const dump = await node.dumpBuffer(key);
        if (dump) out.push({ key, dump });
      }
    } while (cursor !== '0');
  }
  return out;
}

/** The Redis key of a session (same layout as the service). */
function sessionKey(sessions: SessionInstance['sessions'], id: string): string {
  return `redwing:session:{${id.slice(0, 6)}}:s:${sessions.refOf(id)}`;
}

describe.each(['standalone', 'cluster'] as const)('SessionService on %s', (kind) => {
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  let topology: Topology;
  let a: SessionInstance;
  let b: SessionInstance;
  let raw: Redis | Cluster;

  beforeAll(async () => {
    if (kind === 'standalone') {
      server = await RedisServer.start();
      topology = { url: server.url() };
    } else {
      cluster = await RedisCluster.start();
      topology = { cluster: cluster.seeds() };
    }
    [a, b] = await Promise.all([bootSessions(topology), bootSessions(topology)]);
    raw = a.manager.get().command;
  }, 90_000);

  afterAll(async () => {
    await a?.module.close();
    await b?.module.close();
    await server?.stop();
    await cluster?.stop();
  });

  it('creates and reads a session on another instance; records expose ref and userId, never the id', async () => {
    const { id, session } = await a.sessions.create({ userId: 'alice', data: { theme: 'dark', n: 1 } });
    expect(id).toMatch(/^[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(id.split('.')[1], 'base64url')).toHaveLength(32);
    const read = await b.sessions.get(id);
    expect(read).toMatchObject({ ref: session.ref, userId: 'alice', data: { theme: 'dark', n: 1 } });
    expect(read!.ref).toBe(b.sessions.refOf(id));
    expect(read!.absoluteExpiresAt - read!.createdAt).toBe(43_200_000);
    const text = JSON.stringify(read) + JSON.stringify(session);
    expect(text).not.toContain(id);
    expect(text).not.toContain(id.split('.')[1]);
    expect(await b.sessions.get('not-an-id')).toBeNull();
    expect(await b.sessions.get(`${id.slice(0, 7)}${'A'.repeat(43)}`)).toBeNull();
    expect(b.metrics.get('redwing_session_rejected_total{reason=malformed}')).toBe(1);
    expect(b.metrics.get('redwing_session_rejected_total{reason=unknown}')).toBe(1);
  });

  it('keeps no session field, user id or session id in plaintext in Redis (raw DUMP of every key)', async () => {
    const created = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        a.sessions.create({
          userId: `${MARKER}-user-${i}`,
          data: { [`${MARKER}-field`]: `${MARKER}-value-${i}` },
        }),
      ),
    );
    await a.sessions.update(created[0].id, { note: `${MARKER}-updated` });
    const dumps = await dumpAll(raw);
    expect(dumps.length).toBeGreaterThanOrEqual(20);
    let hits = 0;
    for (const { key, dump } of dumps) {
      const haystack = `${key}\n${dump.toString('latin1')}`;
      if (haystack.includes(MARKER)) hits++;
      for (const { id } of created) if (haystack.includes(id.split('.')[1])) hits++;
    }
    expect(hits).toBe(0);
    if (server) {
      await server.cli('SAVE');
      const { readFileSync } = await import('node:fs');
      const rdb = readFileSync(`${server.dir}/dump.rdb`).toString('latin1');
      expect(rdb).toContain('redwing:session');
      expect(rdb.includes(MARKER)).toBe(false);
    }
  });

  it('applies 50 concurrent updates of different fields: 50/50 present', async () => {
    const { id } = await a.sessions.create({ userId: 'bob' });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).sessions.update(id, { [`f${i}`]: i })),
    );
    const read = await a.sessions.get(id);
    const present = Array.from({ length: 50 }, (_, i) => read!.data[`f${i}`] === i).filter(Boolean).length;
    expect(present).toBe(50);
    await a.sessions.update(id, { f0: undefined });
    expect((await a.sessions.get(id))!.data).not.toHaveProperty('f0');
  });

  it('never re-creates a destroyed session by an update or touch', async () => {
    const { id, session } = await a.sessions.create({ userId: 'carol', data: { x: 1 } });
    expect(await a.sessions.destroy(session)).toBe(true);
    await expect(a.sessions.update(id, { x: 2 })).rejects.toBeInstanceOf(SessionNotFoundError);
    await expect(a.sessions.touch(id)).rejects.toBeInstanceOf(SessionNotFoundError);
    expect(await raw.exists(sessionKey(a.sessions, id))).toBe(0);
    expect(await a.sessions.destroy(id)).toBe(false);
  });

  it('rolling refresh: reads inside touchInterval write nothing; an older TTL is extended once; touch() extends now', async () => {
    // Defaults: idleTimeout 30 min, touchInterval 1 min. Time is simulated by lowering the hash's TTL.
    const idle = 1_800_000;
    const { id } = await a.sessions.create({ userId: 'hank' });
    const key = sessionKey(a.sessions, id);
    /** Expiry writes (PEXPIRE/PEXPIREAT, also inside scripts) since the last reset; standalone only. */
    const expiryWrites = async (): Promise<number> => {
      const stats = await server!.info('commandstats');
      const calls = (name: string) => Number(/calls=(\d+)/.exec(stats[`cmdstat_${name}`] ?? '')?.[1] ?? 0);
      return calls('pexpire') + calls('pexpireat');
    };
    if (server) await server.command('CONFIG', 'RESETSTAT');
    for (let i = 0; i < 20; i++) expect(await a.sessions.get(id)).not.toBeNull();
    if (server) expect(await expiryWrites()).toBe(0);
    expect(await raw.pttl(key)).toBeLessThanOrEqual(idle);
    // Just inside the interval (30 s used of 60 s): still no write.
    await raw.pexpire(key, idle - 30_000);
    await a.sessions.get(id);
    expect(await raw.pttl(key)).toBeLessThanOrEqual(idle - 30_000);
    // Ten minutes unused: the first read extends the idle expiry back to idleTimeout, the next 19 write nothing.
    await raw.pexpire(key, idle - 600_000);
    if (server) await server.command('CONFIG', 'RESETSTAT');
    for (let i = 0; i < 20; i++) await b.sessions.get(id);
    if (server) expect(await expiryWrites()).toBe(1);
    expect(await raw.pttl(key)).toBeGreaterThan(idle - 60_000);
    // touch() extends at once, whatever the interval.
    await raw.pexpire(key, idle - 30_000);
    const expiresAt = await a.sessions.touch(id);
    expect(await raw.pttl(key)).toBeGreaterThan(idle - 30_000);
    expect(expiresAt).toBeGreaterThan(Date.now() + idle - 30_000);
  });

  it('never lets the Redis TTL exceed the remaining absolute lifetime: create, read, touch, repair', async () => {
    const capped = await bootSessions(topology, {
      idleTimeout: 600_000,
      absoluteTimeout: 20_000,
      touchInterval: 1_000,
    });
    try {
      const { id, session } = await capped.sessions.create({ userId: 'ivan' });
      const key = sessionKey(capped.sessions, id);
      // The bound is read before PTTL is sent: Redis answers at a later time, so its TTL is at most that (+1 ms
      // of rounding), however long the reply takes on a loaded machine.
      const ttlWithinLifetime = async () => {
        const bound = session.absoluteExpiresAt - Date.now() + 1;
        expect(await raw.pttl(key)).toBeLessThanOrEqual(bound);
      };
      await ttlWithinLifetime();
      expect(await raw.pttl(key)).toBeGreaterThan(0);
      // The expiry touch() reports is measured from the time it sent: exactly the deadline here, never later.
      expect(await capped.sessions.touch(id)).toBe(session.absoluteExpiresAt);
      await ttlWithinLifetime();
      // A TTL longer than the remaining lifetime (written by anything else) is cut back by the next read.
      await raw.pexpire(key, 600_000);
      const read = await capped.sessions.get(id);
      expect(read?.expiresAt).toBeLessThanOrEqual(session.absoluteExpiresAt);
      await ttlWithinLifetime();
      await capped.sessions.update(id, { x: 1 });
      await ttlWithinLifetime();
    } finally {
      await capped.module.close();
    }
  });

  it('counts created, destroyed by reason, and a session found past its absolute deadline as expired', async () => {
    const short = await bootSessions(topology, { idleTimeout: 200, absoluteTimeout: 300, touchInterval: 10 });
    try {
      const m = short.metrics;
      const first = await short.sessions.create({});
      const second = await short.sessions.regenerate(first.id, { userId: 'jack' });
      await short.sessions.destroy(second.session);
      expect(m.get('redwing_session_created_total')).toBe(2);
      expect(m.get('redwing_session_destroyed_total{reason=regenerate}')).toBe(1);
      expect(m.get('redwing_session_destroyed_total{reason=logout}')).toBe(1);
      // A hash that outlived its deadline (its TTL removed behind the lib's back) is refused and deleted.
      const late = await short.sessions.create({ userId: 'jack' });
      const key = sessionKey(short.sessions, late.id);
      await raw.persist(key);
      await waitFor('absolute deadline', 2_000, () => Date.now() > late.session.absoluteExpiresAt + 20);
      expect(await short.sessions.get(late.id)).toBeNull();
      expect(await raw.exists(key)).toBe(0);
      expect(m.get('redwing_session_rejected_total{reason=expired}')).toBe(1);
      expect(m.get('redwing_session_expired_total')).toBeGreaterThanOrEqual(1);
      expect(m.get('redwing_session_rejected_total{reason=tamper}')).toBe(0);
    } finally {
      await short.module.close();
    }
  });

  it('refuses values over maxValueSize', async () => {
    const { id } = await a.sessions.create({});
    await expect(a.sessions.update(id, { big: 'x'.repeat(70_000) })).rejects.toBeInstanceOf(
      SessionValueTooLargeError,
    );
  });

  it('rejects 100 % of tampered sessions: a flipped bit, a blob moved to another id, a field moved', async () => {
    const N = 20;
    const before = a.metrics.get('redwing_session_rejected_total{reason=tamper}');
    const made = await Promise.all(
      Array.from({ length: N * 2 }, () => a.sessions.create({ userId: 'mallory', data: { role: 'user' } })),
    );
    let rejected = 0;
    // Bit flips: one random bit of the ciphertext of the data field or of the metadata.
    for (const [i, { id }] of made.slice(0, N).entries()) {
      const key = sessionKey(a.sessions, id);
      const hash = await raw.hgetall(key);
      const field = i % 2 ? '_m' : Object.keys(hash).find((f) => f.startsWith('f:'))!;
      const blob = Buffer.from(hash[field], 'base64');
      const bit = 33 * 8 + Math.floor(Math.random() * (blob.length - 33) * 8);
      blob[bit >> 3] ^= 1 << (bit & 7);
      await raw.hset(key, field, blob.toString('base64'));
      if ((await a.sessions.get(id)) === null) rejected++;
    }
    // Whole blobs moved: session X's hash stored under session Y's key.
    for (let i = N; i < 2 * N; i += 2) {
      const x = made[i].id;
      const y = made[i + 1].id;
      const hashX = await raw.hgetall(sessionKey(a.sessions, x));
      const keyY = sessionKey(a.sessions, y);
      await raw.del(keyY);
      await raw.hset(keyY, hashX);
      await raw.pexpire(keyY, 60_000);
      if ((await a.sessions.get(y)) === null) rejected++;
      // One field moved into another session that keeps its own metadata.
      const other = await a.sessions.create({ userId: 'mallory' });
      const f = Object.keys(hashX).find((k) => k.startsWith('f:'))!;
      await raw.hset(sessionKey(a.sessions, other.id), f, hashX[f]);
      if ((await a.sessions.get(other.id)) === null) rejected++;
    }
    expect(rejected).toBe(N * 2);
    expect(a.metrics.get('redwing_session_rejected_total{reason=tamper}') - before).toBe(N * 2);
  });

  it('rotates keys mid-run: old-key sessions stay readable until the old key is retired, then 100 % rejected', async () => {
    const rotated = await bootSessions(topology, { keys: [KEY_2, KEY_1] });
    const retired = await bootSessions(topology, { keys: [KEY_2] });
    try {
      const old = await Promise.all(
        Array.from({ length: 20 }, () => a.sessions.create({ userId: 'dave', data: { v: 1 } })),
      );
      // While traffic runs on the old ring, the rotated instance reads every old session and writes new ones.
      const reads = await Promise.all(old.map(({ id }) => rotated.sessions.get(id)));
      expect(reads.filter((r) => r?.data.v === 1)).toHaveLength(20);
      await Promise.all(old.map(({ id }) => rotated.sessions.update(id, { w: 2 })));
      const mixed = await Promise.all(old.map(({ id }) => rotated.sessions.get(id)));
      expect(mixed.filter((r) => r?.data.v === 1 && r.data.w === 2)).toHaveLength(20);
      const fresh = await rotated.sessions.create({ userId: 'dave', data: { v: 3 } });
      expect((await retired.sessions.get(fresh.id))?.data.v).toBe(3);
      expect(await a.sessions.get(fresh.id)).toBeNull();
      // CSRF tokens signed by the new key verify on the rotated ring; old-key tokens still verify there.
      expect(rotated.sessions.verifyCsrf(old[0].id, a.sessions.csrfToken(old[0].id))).toBe(true);
      expect(retired.sessions.verifyCsrf(old[0].id, a.sessions.csrfToken(old[0].id))).toBe(false);
      // Retired: every session whose metadata the old key encrypted is refused as unknown_key.
      const afterRetire = await Promise.all(old.map(({ id }) => retired.sessions.get(id)));
      expect(afterRetire.filter((r) => r === null)).toHaveLength(20);
      expect(retired.metrics.get('redwing_session_rejected_total{reason=unknown_key}')).toBe(20);
    } finally {
      await rotated.module.close();
      await retired.module.close();
    }
  });

  it('lists a user’s sessions and logs out everywhere, with revocation events on every instance', async () => {
    const user = `erin-${kind}`;
    const events: SessionRevokedEvent[] = [];
    const off = b.sessions.onRevoked((e) => events.push(e));
    try {
      const made = await Promise.all([1, 2, 3].map(() => a.sessions.create({ userId: user })));
      const listed = await b.sessions.listForUser(user);
      expect(listed.map((s) => s.ref).sort()).toEqual(made.map((m) => m.session.ref).sort());
      // One logout: the other instance hears the ref within 1 s.
      let receivedAt = 0;
      const offTime = b.sessions.onRevoked(() => (receivedAt ||= Date.now()));
      await a.sessions.destroy(made[0].id);
      const destroyedAt = Date.now();
      await waitFor('revocation on B', 5_000, () => events.length === 1);
      offTime();
      // Published right after the delete: B hears it well within the 1 s figure of RELIABILITY.md.
      expect(receivedAt - destroyedAt).toBeLessThan(1_000);
      expect(events[0]).toEqual({ userId: user, refs: [made[0].session.ref] });
      // Everywhere but the current one, then everywhere.
      expect(await a.sessions.destroyAllForUser(user, { except: made[1].session })).toBe(1);
      await waitFor('second revocation', 1_000, () => events.length === 2);
      expect(events[1]).toEqual({ userId: user, refs: [made[2].session.ref] });
      expect(await b.sessions.destroyAllForUser(user)).toBe(1);
      expect(await a.sessions.get(made[1].id)).toBeNull();
      expect(await a.sessions.listForUser(user)).toEqual([]);
      expect(a.metrics.get('redwing_session_destroyed_total{reason=logout_all}')).toBeGreaterThanOrEqual(1);
    } finally {
      off();
    }
  });

  it('regenerate gives a new id, destroys the old session and can keep its data', async () => {
    const first = await a.sessions.create({ data: { cart: [1, 2] } });
    const next = await a.sessions.regenerate(first.id, { userId: 'frank', keepData: true });
    expect(next.id).not.toBe(first.id);
    expect(await a.sessions.get(first.id)).toBeNull();
    expect((await a.sessions.get(next.id))?.data).toEqual({ cart: [1, 2] });
    expect(next.session.userId).toBe('frank');
  });

  it('cleans the per-user index of expired sessions without keyspace notifications', async () => {
    const short = await bootSessions(topology, {
      idleTimeout: 300,
      absoluteTimeout: 5_000,
      touchInterval: 50,
    });
    try {
      const user = `gina-${kind}`;
      await Promise.all([1, 2, 3].map(() => short.sessions.create({ userId: user })));
      const tag = (await short.sessions.create({ userId: user })).id.slice(0, 6);
      const indexKeys = async () =>
        (await dumpAll(raw)).filter(({ key }) => key.startsWith(`redwing:session:{${tag}}:u:`));
      expect(await indexKeys()).toHaveLength(1);
      expect(await raw.config('GET', 'notify-keyspace-events')).toEqual(['notify-keyspace-events', '']);
      await waitFor('idle expiry', 5_000, async () => (await short.sessions.listForUser(user)).length === 0);
      // The emptied index is gone (Redis drops an empty sorted set); nothing was left behind.
      expect(await indexKeys()).toHaveLength(0);
      expect(short.metrics.get('redwing_session_expired_total')).toBeGreaterThanOrEqual(4);
    } finally {
      await short.module.close();
    }
  });
});

describe('SessionService: a revocation-channel SUBSCRIBE Redis refuses', () => {
  const REFUSED = 'redwing_session_refused_subscriptions_current';

  it('is counted and sent again until accepted: at start, and when the re-subscribe after a reconnect is refused', async () => {
    const server = await RedisServer.start();
    const acl = (...rules: string[]) => server.command('ACL', 'SETUSER', 'default', ...rules);
    await acl('resetchannels'); // the default user may not use any channel (Redis 7's default for new users)
    const a = await bootSessions({ url: server.url() });
    const b = await bootSessions({ url: server.url() });
    const events: SessionRevokedEvent[] = [];
    b.sessions.onRevoked((e) => events.push(e));
    const logout = async (user: string) => {
      const { id } = await a.sessions.create({ userId: user });
      await a.sessions.destroy(id);
    };
    try {
      await waitFor('B refused', 5_000, () => b.metrics.gaugeValue(REFUSED) === 1);

      // The ACL is fixed: the lib's retry (1 s, then 2 s, ...) subscribes without a restart; B hears A's logout.
      await acl('allchannels');
      await waitFor('B accepted', 10_000, () => b.metrics.gaugeValue(REFUSED) === 0);
      await logout('gina');
      await waitFor('revocation on B', 5_000, () => events.length === 1);
      expect(events[0]).toMatchObject({ userId: 'gina' });

      // Revoked again and the subscriber connections dropped: ioredis's own re-subscribe is refused (and
      // dropped by ioredis without a word); the lib's SUBSCRIBE on `ready` sees the refusal and retries it.
      await acl('resetchannels');
      await server.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor('B refused after the reconnect', 10_000, () => b.metrics.gaugeValue(REFUSED) === 1);
      await acl('allchannels');
      await waitFor('B accepted again', 10_000, () => b.metrics.gaugeValue(REFUSED) === 0);
      await logout('hank');
      await waitFor('revocation on B after the reconnect', 5_000, () => events.length === 2);
      expect(events[1]).toMatchObject({ userId: 'hank' });
    } finally {
      await Promise.all([a.module.close(), b.module.close()]);
      await server.stop();
    }
  }, 60_000);
});
