import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOST } from './ports';
import { registerStoppable, unregisterStoppable } from './process-registry';
import { RedisServer } from './redis-server';
import { respCommand, type RespValue } from './resp';
import { waitFor } from './wait';

/** Options for {@link RedisSentinel.start}. */
export interface RedisSentinelOptions {
  /** `sentinel down-after-milliseconds` (default 1000). */
  downAfter?: number;
  /** `sentinel failover-timeout` (default 5000). */
  failoverTimeout?: number;
  /** Monitored master name (default `mymaster`). */
  masterName?: string;
}

const SENTINELS = 3;
const QUORUM = 2;
const READY_TIMEOUT_MS = 30_000;

function sentinelConfig(
  masterName: string,
  masterPort: number,
  downAfter: number,
  failoverTimeout: number,
): string {
  return [
    `sentinel monitor ${masterName} ${HOST} ${masterPort} ${QUORUM}`,
    `sentinel down-after-milliseconds ${masterName} ${downAfter}`,
    `sentinel failover-timeout ${masterName} ${failoverTimeout}`,
    `sentinel parallel-syncs ${masterName} 1`,
    '',
  ].join('\n');
}

/** SENTINEL MASTER's flat [k, v, k, v, ...] reply as an object. */
function pairs(reply: RespValue): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(reply))
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}

/**
 * A Sentinel setup on free ports: one master, one replica and three sentinels (quorum 2).
 * `master` and `replica` are the processes as started; after a failover use
 * currentMasterPort() to learn which one is the master.
 */
export class RedisSentinel {
  private stopping?: Promise<void>;

  private constructor(
    readonly masterName: string,
    readonly master: RedisServer,
    readonly replica: RedisServer,
    readonly sentinels: RedisServer[],
  ) {}

  /**
   * Starts master, replica and sentinels, each with its own dir (each sentinel with its own
   * writable config file), and waits (≤ 30 s) until the replica link is up and every sentinel
   * sees the replica and the two other sentinels.
   */
  static async start(opts: RedisSentinelOptions = {}): Promise<RedisSentinel> {
    const masterName = opts.masterName ?? 'mymaster';
    if (!/^[A-Za-z0-9._-]+$/.test(masterName))
      throw new Error(`RedisSentinel: bad master name ${masterName}`);
    const downAfter = opts.downAfter ?? 1000;
    const failoverTimeout = opts.failoverTimeout ?? 5000;
    const started: RedisServer[] = [];
    try {
      const master = await RedisServer.start();
      started.push(master);
      const replica = await RedisServer.start({ extraArgs: ['--replicaof', HOST, String(master.port)] });
      started.push(replica);
      const conf = sentinelConfig(masterName, master.port, downAfter, failoverTimeout);
      const sentinels = await Promise.all(
        Array.from({ length: SENTINELS }, async () => {
          const s = await RedisServer.launch({
            kind: 'sentinel',
            prepare: (dir) => fs.writeFileSync(path.join(dir, 'sentinel.conf'), conf),
            args: (port, dir) => [
              path.join(dir, 'sentinel.conf'),
              '--sentinel',
              '--port',
              String(port),
              '--bind',
              HOST,
              '--daemonize',
              'no',
              '--dir',
              dir,
              '--logfile',
              path.join(dir, 'redis.log'),
            ],
          });
          started.push(s);
          return s;
        }),
      );
      const setup = new RedisSentinel(masterName, master, replica, sentinels);
      registerStoppable(setup);
      await setup.waitReady();
      return setup;
    } catch (err) {
      await Promise.allSettled(started.map((s) => s.stop()));
      throw err;
    }
  }

  /** Sentinel addresses for a client (`sentinels: [...]`). */
  sentinelAddresses(): Array<{ host: string; port: number }> {
    return this.sentinels.map((s) => ({ host: s.host, port: s.port }));
  }

  /** The master port according to SENTINEL get-master-addr-by-name (first sentinel that answers). */
  async currentMasterPort(): Promise<number> {
    const errors: string[] = [];
    for (const s of this.sentinels) {
      if (!s.running || s.isPaused) continue;
      try {
        const reply = await respCommand(
          s.endpoint,
          ['SENTINEL', 'get-master-addr-by-name', this.masterName],
          {
            timeoutMs: 1000,
          },
        );
        if (Array.isArray(reply) && reply.length === 2) return Number(reply[1]);
        errors.push(`port ${s.port}: unexpected reply ${JSON.stringify(reply)}`);
      } catch (err) {
        errors.push(`port ${s.port}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no sentinel answered get-master-addr-by-name: ${errors.join('; ')}`);
  }

  /**
   * SIGKILLs whatever is the current master, identified by the PID it reports in INFO server
   * (which must be one of ours), and returns its port.
   */
  async killMaster(): Promise<number> {
    const port = await this.currentMasterPort();
    const server = [this.master, this.replica].find((s) => s.port === port);
    if (!server) throw new Error(`killMaster: master port ${port} is not one of this setup's servers`);
    const reported = Number((await server.info('server')).process_id);
    if (reported !== server.pid) {
      throw new Error(`killMaster: port ${port} reports pid ${reported}, expected ${server.pid}`);
    }
    await server.kill('SIGKILL');
    return port;
  }

  /** Stops sentinels first, then replica and master. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await Promise.all(this.sentinels.map((s) => s.stop()));
        await Promise.all([this.replica.stop(), this.master.stop()]);
      } finally {
        unregisterStoppable(this);
      }
    })();
    return this.stopping;
  }

  private async waitReady(): Promise<void> {
    await waitFor(
      'the sentinel setup to be ready (replica linked, sentinels see replica and each other)',
      READY_TIMEOUT_MS,
      async () => {
        const repl = await this.replica.info('replication');
        if (repl.master_link_status !== 'up') throw new Error('replica link not up');
        for (const s of this.sentinels) {
          const m = pairs(
            await respCommand(s.endpoint, ['SENTINEL', 'MASTER', this.masterName], { timeoutMs: 1000 }),
          );
          if (m['num-slaves'] !== '1') throw new Error(`sentinel ${s.port}: num-slaves=${m['num-slaves']}`);
          const others = m['num-other-sentinels'];
          if (others !== String(SENTINELS - 1))
            throw new Error(`sentinel ${s.port}: num-other-sentinels=${others}`);
        }
        return true;
      },
      { intervalMs: 100, details: () => this.sentinels.map((s) => s.logTail(5)).join('\n') },
    );
  }
}
