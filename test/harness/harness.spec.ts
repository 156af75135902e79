import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { transformFileSync } from '@swc/core';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import {
  FaultProxy,
  freePort,
  isProcessAlive,
  RedisCluster,
  RedisSentinel,
  RedisServer,
  startedPids,
  stopAll,
} from './index';
import { CLAIM_DIR, claimPort, ephemeralRange, portPool } from './ports';
import { waitFor } from './wait';

const HOST = '127.0.0.1';
const clients: Array<Redis | Cluster> = [];

/** An ioredis client that never retries, so faults surface as errors instead of hangs. */
function client(opts: RedisOptions = {}): Redis {
  const c = new Redis({ host: HOST, maxRetriesPerRequest: 0, retryStrategy: () => null, ...opts });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

type RawOutcome = { kind: 'data' | 'close' | 'error' | 'timeout'; code?: string };

/** Connects with a plain socket, optionally writes, and reports what happened first. */
function rawProbe(port: number, payload?: string, timeoutMs = 1000): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    const done = (o: RawOutcome): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    s.on('connect', () => payload !== undefined && s.write(payload));
    s.on('data', () => done({ kind: 'data' }));
    s.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'error', code: err.code }));
    s.on('close', () => done({ kind: 'close' }));
  });
}

afterAll(async () => {
  // ioredis leaves a 2 s timer behind when disconnect() is called on an already ended client.
  for (const c of clients) if (c.status !== 'end') c.disconnect();
  await stopAll();
  const pids = startedPids();
  expect(pids.filter(isProcessAlive)).toEqual([]);
});

describe('freePort', () => {
  it('hands out distinct, bindable ports', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(20);
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(ports[0], HOST, resolve));
    await new Promise((resolve) => srv.close(resolve));
  });

  it('draws from below the ephemeral range and claims each port for this process', async () => {
    const pool = portPool();
    expect(pool).toBeDefined();
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      // A source port of an outgoing connection can never be one of ours.
      expect(port).toBeLessThan(ephemeralRange()[0]);
      expect(port).toBeGreaterThanOrEqual(pool![0]);
      expect(fs.readFileSync(path.join(CLAIM_DIR, String(port)), 'utf8')).toBe(String(process.pid));
    }
  });

  it('leaves a port claimed by a live process alone and frees one whose process is gone', async () => {
    const [low, high] = portPool()!;
    const unclaimed = (): number => {
      for (;;) {
        const port = low + Math.floor(Math.random() * (high - low + 1));
        if (!fs.existsSync(path.join(CLAIM_DIR, String(port)))) return port;
      }
    };
    fs.mkdirSync(CLAIM_DIR, { recursive: true });
    const files: string[] = [];
    try {
      // Held by a live process (our parent, the jest runner): never taken.
      const held = unclaimed();
      files.push(path.join(CLAIM_DIR, String(held)));
      fs.writeFileSync(files[0], String(process.ppid));
      expect(claimPort(held)).toBe(false);
      expect(fs.readFileSync(files[0], 'utf8')).toBe(String(process.ppid));

      // Left behind by a process that is gone: removed, and free for the next claim.
      const dead = spawn(process.execPath, ['-e', '0']);
      await new Promise((resolve) => dead.once('exit', resolve));
      const stale = unclaimed();
      files.push(path.join(CLAIM_DIR, String(stale)));
      fs.writeFileSync(files[1], String(dead.pid));
      expect(claimPort(stale)).toBe(false);
      expect(fs.existsSync(files[1])).toBe(false);
      expect(claimPort(stale)).toBe(true);
      expect(claimPort(stale)).toBe(false);
      expect(fs.readFileSync(files[1], 'utf8')).toBe(String(process.pid));
    } finally {
      for (const file of files) fs.rmSync(file, { force: true });
    }
  });
});

describe('RedisServer (standalone)', () => {
  it('starts on a free port in its own dir and answers', async () => {
    const s = await RedisServer.start();
    expect(s.port).not.toBe(6379);
    expect(s.host).toBe(HOST);
    expect(s.url()).toBe(`redis://${HOST}:${s.port}`);
    expect(s.url({ db: 2 })).toBe(`redis://${HOST}:${s.port}/2`);
    expect(fs.existsSync(path.join(s.dir, 'redis.log'))).toBe(true);
    expect(await s.cli('SET', 'k', 'v')).toBe('OK');
    expect(await s.cli('GET', 'k')).toBe('v');
    const info = await s.info('server');
    expect(Number(info.process_id)).toBe(s.pid);
    expect(Number(info.tcp_port)).toBe(s.port);
    expect(await s.cli('CONFIG', 'GET', 'save')).toBe('save');
    const c = client({ port: s.port });
    expect(await c.get('k')).toBe('v');
    await s.stop();
    await s.stop(); // idempotent
    expect(isProcessAlive(s.pid)).toBe(false);
    expect(fs.existsSync(s.dir)).toBe(false);
  });

  it('pause() freezes it, resume() continues, kill() really ends it', async () => {
    const s = await RedisServer.start();
    const c = client({ port: s.port, commandTimeout: 300 });
    expect(await c.ping()).toBe('PONG');
    s.pause();
    await expect(c.ping()).rejects.toThrow(/timed out/i);
    s.resume();
    expect(await c.ping()).toBe('PONG');
    const pid = s.pid;
    await s.kill();
    expect(s.running).toBe(false);
    expect(isProcessAlive(pid)).toBe(false);
    await expect(c.ping()).rejects.toThrow();
    expect(await rawProbe(s.port)).toEqual({ kind: 'error', code: 'ECONNREFUSED' });
  });

  it('restart() after SIGKILL keeps AOF data on the same port', async () => {
    const s = await RedisServer.start({ appendonly: true, appendfsync: 'always' });
    const { port, pid } = s;
    expect(await s.cli('SET', 'durable', 'yes')).toBe('OK');
    await s.kill('SIGKILL');
    await s.restart();
    expect(s.port).toBe(port);
    expect(s.pid).not.toBe(pid);
    expect(await s.cli('GET', 'durable')).toBe('yes');
  });

  it('kill() while paused with SIGTERM still ends the process', async () => {
    const s = await RedisServer.start();
    s.pause();
    await s.kill('SIGTERM');
    expect(isProcessAlive(s.pid)).toBe(false);
  });
});

describe('RedisServer (ACL)', () => {
  it('an ACL user gets NOPERM on foreign keys and dangerous commands', async () => {
    const s = await RedisServer.start({
      requirepass: 'adminpass',
      users: [{ name: 'app', password: 'apppass', rules: ['~app:*', '&app:*', '+@all', '-@dangerous'] }],
    });
    expect(s.url()).toBe(`redis://:adminpass@${HOST}:${s.port}`);
    const appUrl = new Redis(s.url({ username: 'app', password: 'apppass' }), { lazyConnect: true });
    appUrl.on('error', () => undefined);
    clients.push(appUrl);
    expect(await appUrl.set('app:1', 'x')).toBe('OK');
    await expect(appUrl.set('other:1', 'x')).rejects.toThrow(/NOPERM/);
    await expect(appUrl.flushall()).rejects.toThrow(/NOPERM/);
    expect(await s.cli('GET', 'app:1')).toBe('x'); // admin via requirepass
    const anonymous = client({ port: s.port });
    await expect(anonymous.get('app:1')).rejects.toThrow(/NOAUTH/);
  });
});

describe('RedisServer (TLS)', () => {
  it('serves rediss:// with a test CA and refuses an unverified certificate', async () => {
    const s = await RedisServer.start({ tls: true });
    const tls = s.tls!;
    expect(s.url()).toBe(`rediss://${HOST}:${s.port}`);
    expect(tls.ca).toContain('BEGIN CERTIFICATE');
    expect(await s.cli('PING')).toBe('PONG');

    const trusted = client({ port: s.port, tls: { ca: tls.ca } });
    expect(await trusted.ping()).toBe('PONG');
    const mutual = client({ port: s.port, tls: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey } });
    expect(await mutual.ping()).toBe('PONG');
    const viaUrl = new Redis(s.url(), {
      tls: { ca: tls.ca },
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    viaUrl.on('error', () => undefined);
    clients.push(viaUrl);
    expect(await viaUrl.ping()).toBe('PONG');

    const untrusted = client({ port: s.port, tls: {}, lazyConnect: true });
    const tlsErrors: Error[] = [];
    untrusted.on('error', (e: Error) => tlsErrors.push(e));
    await expect(untrusted.connect()).rejects.toThrow();
    expect(tlsErrors.map((e) => e.message).join('\n')).toMatch(/self[- ]signed|unable to (verify|get)/i);
    // The plain-text port is disabled: a RESP PING over plain TCP gets no PONG.
    expect((await rawProbe(s.port, '*1\r\n$4\r\nPING\r\n', 500)).kind).not.toBe('data');
  });
});

describe('RedisCluster', () => {
  let cluster: RedisCluster;
  let cc: Cluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
    cc = new Cluster(cluster.seeds(), {
      clusterRetryStrategy: () => null,
      redisOptions: { maxRetriesPerRequest: 1 },
    });
    cc.on('error', () => undefined);
    clients.push(cc);
  }, 60_000);
  afterAll(() => cluster?.stop());

  it('runs 3 masters + 3 replicas that serve keys across slots', async () => {
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.seeds()).toHaveLength(6);
    expect(await cluster.masters()).toHaveLength(3);
    const keys = Array.from({ length: 30 }, (_, i) => `key:${i}`);
    for (const k of keys) await cc.set(k, `v-${k}`);
    for (const k of keys) expect(await cc.get(k)).toBe(`v-${k}`);
    const slots = new Set(
      await Promise.all(keys.map((k) => cluster.nodes[0].command('CLUSTER', 'KEYSLOT', k))),
    );
    expect(slots.size).toBeGreaterThan(10);
  });

  it('moveSlot() moves a slot with its key to another master; the key stays readable', async () => {
    await cc.set('move-me', 'still-here');
    const slot = Number(await cluster.nodes[0].command('CLUSTER', 'KEYSLOT', 'move-me'));
    const { from, to } = await cluster.moveSlot(slot);
    expect(from).not.toBe(to);
    const target = cluster.nodes.find((n) => n.port === to)!;
    expect(await target.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(1);
    const source = cluster.nodes.find((n) => n.port === from)!;
    expect(await source.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(0);
    expect(await cc.get('move-me')).toBe('still-here');
    await cc.set('move-me', 'updated');
    expect(await cc.get('move-me')).toBe('updated');
  });
});

describe('RedisSentinel', () => {
  let sentinel: RedisSentinel;
  beforeAll(async () => {
    sentinel = await RedisSentinel.start({ downAfter: 1000 });
  }, 60_000);
  afterAll(() => sentinel?.stop());

  it('fails over to the replica after killMaster()', async () => {
    expect(sentinel.sentinelAddresses()).toHaveLength(3);
    expect(await sentinel.currentMasterPort()).toBe(sentinel.master.port);
    const killed = await sentinel.killMaster();
    expect(killed).toBe(sentinel.master.port);
    expect(isProcessAlive(sentinel.master.pid)).toBe(false);
    const t0 = Date.now();
    const now = await waitFor(
      'a new master',
      20_000,
      async () => {
        const p = await sentinel.currentMasterPort();
        return p !== killed ? p : undefined;
      },
      { intervalMs: 100 },
    );
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(now).toBe(sentinel.replica.port);

    const viaSentinel = new Redis({
      sentinels: sentinel.sentinelAddresses(),
      name: sentinel.masterName,
      maxRetriesPerRequest: 0,
      sentinelRetryStrategy: () => null,
    });
    viaSentinel.on('error', () => undefined);
    clients.push(viaSentinel);
    await waitFor(
      'a write through sentinel discovery',
      10_000,
      async () => (await viaSentinel.set('k', 'v')) === 'OK',
    );
    viaSentinel.disconnect();
  }, 40_000);
});

describe('FaultProxy', () => {
  let redis: RedisServer;
  let proxy: FaultProxy;
  beforeAll(async () => {
    redis = await RedisServer.start();
    proxy = await FaultProxy.start(redis);
  });
  beforeEach(() => {
    proxy.setMode('pass');
    proxy.setLatency(0);
    proxy.setChunkSize(null);
    proxy.resetCounts();
  });

  it('passes traffic and counts commands by name', async () => {
    const c = client({ port: proxy.port });
    expect(await c.set('p', '1')).toBe('OK');
    proxy.resetCounts();
    for (let i = 0; i < 3; i++) expect(await c.get('p')).toBe('1');
    await c.set('q', '2');
    expect(proxy.commandCount('GET')).toBe(3);
    expect(proxy.commandCount('get')).toBe(3);
    expect(proxy.commandCount('SET')).toBe(1);
    expect(proxy.commandCount()).toBe(4);
    expect(proxy.connections()).toBeGreaterThanOrEqual(1);
    expect(await rawProbe(proxy.port, 'PING\r\n')).toEqual({ kind: 'data' }); // inline command
    expect(proxy.commandCount('PING')).toBe(1);
  });

  it('still works when data is sliced into 1-byte writes', async () => {
    proxy.setChunkSize(1);
    const c = client({ port: proxy.port });
    const big = 'x'.repeat(2000) + '\u00e9\u6f22';
    expect(await c.set('big', big)).toBe('OK');
    expect(await c.get('big')).toBe(big);
    expect(await c.mget('big', 'missing')).toEqual([big, null]);
  });

  it('adds latency in both directions', async () => {
    const c = client({ port: proxy.port });
    await c.ping();
    proxy.setLatency(100);
    const t0 = performance.now();
    await c.ping();
    const rtt = performance.now() - t0;
    expect(rtt).toBeGreaterThanOrEqual(195);
    expect(rtt).toBeLessThan(1500);
  });

  it('blackhole makes commands time out but still counts them', async () => {
    const c = client({ port: proxy.port, commandTimeout: 300 });
    await c.ping();
    proxy.setMode('blackhole');
    const pings = proxy.commandCount('PING');
    const t0 = performance.now();
    await expect(c.get('anything')).rejects.toThrow(/timed out/i);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(proxy.commandCount('GET')).toBe(1);
    // New connections are accepted but never answered either.
    expect(await rawProbe(proxy.port, '*1\r\n$4\r\nPING\r\n', 300)).toEqual({ kind: 'timeout' });
    expect(proxy.commandCount('PING')).toBe(pings + 1);
  });

  it('reset errors connected clients and new connections', async () => {
    const c = client({ port: proxy.port });
    const errors: NodeJS.ErrnoException[] = [];
    c.on('error', (e: NodeJS.ErrnoException) => errors.push(e));
    await c.ping();
    proxy.setMode('reset');
    await waitFor('ECONNRESET on the client', 2000, () => errors.some((e) => e.code === 'ECONNRESET'));
    await expect(c.ping()).rejects.toThrow();
    expect(proxy.connections()).toBe(0);
    expect(await rawProbe(proxy.port, '*1\r\n$4\r\nPING\r\n')).toEqual({ kind: 'error', code: 'ECONNRESET' });
  });

  it('refuse closes new connections; pass restores service', async () => {
    proxy.setMode('refuse');
    expect(await rawProbe(proxy.port, '*1\r\n$4\r\nPING\r\n')).toEqual({ kind: 'close' });
    proxy.setMode('pass');
    const c = client({ port: proxy.port });
    expect(await c.ping()).toBe('PONG');
  });

  it('stop() closes the listener and every socket', async () => {
    const p = await FaultProxy.start(redis);
    const c = client({ port: p.port });
    await c.ping();
    await p.stop();
    await p.stop();
    expect(p.connections()).toBe(0);
    await expect(c.ping()).rejects.toThrow();
    expect(await rawProbe(p.port)).toEqual({ kind: 'error', code: 'ECONNREFUSED' });
  });
});

describe('crash safety net', () => {
  let outDir: string;
  beforeAll(() => {
    // Compile the harness and the fixture to plain CommonJS so a bare `node` can run them.
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'redwing-test-crash-'));
    fs.mkdirSync(path.join(outDir, 'fixtures'));
    const files = fs
      .readdirSync(__dirname)
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
      .concat('fixtures/crash-child.ts');
    for (const f of files) {
      const { code } = transformFileSync(path.join(__dirname, f), {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
      });
      fs.writeFileSync(path.join(outDir, f.replace(/\.ts$/, '.js')), code);
    }
  });
  afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

  it.each(['SIGKILL', 'throw', 'exit'])(
    'a test process ending by %s leaves no redis-server or temp dir behind',
    async (how) => {
      const child = spawn(process.execPath, [path.join(outDir, 'fixtures', 'crash-child.js'), how], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      await new Promise((resolve) => child.once('exit', resolve));
      const match = /^pid (\d+)$/m.exec(stdout);
      if (!match) throw new Error(`fixture printed no pid; stdout=${stdout} stderr=${stderr}`);
      const pid = Number(match[1]);
      const dir = /^dir (.+)$/m.exec(stdout)![1];
      await waitFor(`redis pid ${pid} of the dead process to be gone`, 5000, () => !isProcessAlive(pid), {
        intervalMs: 20,
      });
      await waitFor(`its dir ${dir} to be deleted`, 5000, () => !fs.existsSync(dir), { intervalMs: 20 });
    },
  );
});
