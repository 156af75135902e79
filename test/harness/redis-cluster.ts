import { execFile } from 'node:child_process';
import { freePort, HOST } from './ports';
import { registerStoppable, unregisterStoppable } from './process-registry';
import { PortInUseError, RedisServer } from './redis-server';
import { respCall, RespError, type RespValue } from './resp';
import { waitFor } from './wait';

/** Options for {@link RedisCluster.start}. */
export interface RedisClusterOptions {
  /** Number of masters (≥ 3, as `redis-cli --cluster create` requires); default 3. */
  masters?: number;
  /** Replicas per master; default 1. */
  replicasPerMaster?: number;
}

const NODE_TIMEOUT_MS = 2000;
const CONVERGE_TIMEOUT_MS = 30_000;
const SLOT_COUNT = 16384;

/** One range of CLUSTER SLOTS, reduced to ports. */
interface SlotRange {
  start: number;
  end: number;
  master: number;
  replicas: number[];
}

function parseSlots(reply: RespValue): SlotRange[] {
  if (!Array.isArray(reply)) throw new Error('CLUSTER SLOTS: unexpected reply');
  return reply.map((entry) => {
    const e = entry as RespValue[];
    const nodePort = (n: RespValue): number => Number((n as RespValue[])[1]);
    return {
      start: Number(e[0]),
      end: Number(e[1]),
      master: nodePort(e[2]),
      replicas: e
        .slice(3)
        .map(nodePort)
        .sort((a, b) => a - b),
    };
  });
}

function signature(ranges: SlotRange[], withReplicas: boolean): string {
  return [...ranges]
    .sort((a, b) => a.start - b.start)
    .map((r) => `${r.start}-${r.end}@${r.master}` + (withReplicas ? `[${r.replicas.join(',')}]` : ''))
    .join(' ');
}

function covered(ranges: SlotRange[]): number {
  return ranges.reduce((n, r) => n + (r.end - r.start + 1), 0);
}

/**
 * A Redis Cluster of redis-server processes on free ports (default 3 masters + 3 replicas,
 * cluster-node-timeout 2000 ms). Each node also gets a free cluster-bus port (`--cluster-port`).
 */
export class RedisCluster {
  private stopping?: Promise<void>;

  private constructor(readonly nodes: RedisServer[]) {}

  /**
   * Starts the nodes, runs `redis-cli --cluster create ... --cluster-yes` and waits (≤ 30 s)
   * until every node reports cluster_state:ok, knows every other node and all nodes agree on
   * the owner (and replicas) of all 16384 slots.
   */
  static async start(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = opts.masters ?? 3;
    const replicas = opts.replicasPerMaster ?? 1;
    if (!Number.isInteger(masters) || masters < 3) throw new Error('RedisCluster: masters must be >= 3');
    if (!Number.isInteger(replicas) || replicas < 0) throw new Error('RedisCluster: bad replicasPerMaster');
    const total = masters * (1 + replicas);
    const started = await Promise.allSettled(Array.from({ length: total }, () => startNode()));
    const nodes = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const cluster = new RedisCluster(nodes);
    registerStoppable(cluster);
    try {
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      await cluster.create(replicas);
      await cluster.waitConverged(total, replicas);
      return cluster;
    } catch (err) {
      await cluster.stop().catch(() => undefined);
      throw err;
    }
  }

  /** Seed addresses for a cluster client (every node). */
  seeds(): Array<{ host: string; port: number }> {
    return this.nodes.map((n) => ({ host: n.host, port: n.port }));
  }

  /** The running nodes that currently report `ROLE` master, ordered by port. */
  async masters(): Promise<RedisServer[]> {
    const roles = await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.running || n.isPaused) return false;
        try {
          const reply = await n.commandWith({ timeoutMs: 1000 }, 'ROLE');
          return Array.isArray(reply) && reply[0] === 'master';
        } catch {
          return false;
        }
      }),
    );
    return this.nodes.filter((_, i) => roles[i]).sort((a, b) => a.port - b.port);
  }

  /**
   * Moves one slot (with its keys) from its owner to another master, as `redis-cli --cluster
   * reshard` does: SETSLOT IMPORTING on the target, SETSLOT MIGRATING on the source, MIGRATE the
   * keys in batches, then SETSLOT NODE on target, source and the other masters. Safe under load
   * (clients follow ASK/MOVED). Resolves once every reachable node agrees on the new owner.
   */
  async moveSlot(slot: number): Promise<{ from: number; to: number }> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new RangeError(`bad slot ${slot}`);
    const masters = await this.masters();
    const ownerPort = await this.slotOwnerPort(slot);
    const source = masters.find((m) => m.port === ownerPort);
    if (!source) throw new Error(`moveSlot(${slot}): owner on port ${ownerPort} is not a running master`);
    const others = masters.filter((m) => m !== source);
    if (others.length === 0) throw new Error(`moveSlot(${slot}): no other master to move to`);
    // Deterministic choice: the next master by port, wrapping around.
    const target = others.find((m) => m.port > source.port) ?? others[0];
    const sourceId = String(await source.command('CLUSTER', 'MYID'));
    const targetId = String(await target.command('CLUSTER', 'MYID'));

    await target.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
    await source.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
    await waitFor(
      `keys of slot ${slot} to migrate to port ${target.port}`,
      30_000,
      async () => {
        const keys = (await source.commandWith(
          { buffers: true },
          'CLUSTER',
          'GETKEYSINSLOT',
          slot,
          100,
        )) as Buffer[];
        if (keys.length === 0) return true;
        await source.commandWith(
          { timeoutMs: 10_000 },
          'MIGRATE',
          HOST,
          target.port,
          '',
          0,
          5000,
          'REPLACE',
          'KEYS',
          ...keys,
        );
        return false;
      },
      { intervalMs: 0 },
    );
    await target.command('CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
    await source.command('CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
    await Promise.all(
      others
        .filter((m) => m !== target)
        .map((m) => m.command('CLUSTER', 'SETSLOT', slot, 'NODE', targetId).catch(() => undefined)),
    );
    await waitFor(`all nodes to agree that slot ${slot} is on port ${target.port}`, 10_000, async () => {
      const views = await this.slotViews();
      return views.length > 0 && views.every((ranges) => ownerOf(ranges, slot) === target.port);
    });
    return { from: source.port, to: target.port };
  }

  /** Stops every node (in parallel). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await Promise.all(this.nodes.map((n) => n.stop()));
      } finally {
        unregisterStoppable(this);
      }
    })();
    return this.stopping;
  }

  private async create(replicas: number): Promise<void> {
    const addrs = this.nodes.map((n) => `${n.host}:${n.port}`);
    const args = ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'];
    await new Promise<void>((resolve, reject) => {
      execFile('redis-cli', args, { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) {
          const logs = this.nodes.map((n) => n.logTail(5)).join('\n');
          reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${stdout}${stderr}\n${logs}`));
        } else {
          resolve();
        }
      });
    });
  }

  /** CLUSTER SLOTS as seen by every reachable node. */
  private async slotViews(): Promise<SlotRange[][]> {
    const views = await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.running || n.isPaused) return undefined;
        try {
          const [slots] = await respCall(n.endpoint, [['CLUSTER', 'SLOTS']], { timeoutMs: 1000 });
          return slots instanceof RespError ? undefined : parseSlots(slots);
        } catch {
          return undefined;
        }
      }),
    );
    return views.filter((v): v is SlotRange[] => v !== undefined);
  }

  private async slotOwnerPort(slot: number): Promise<number> {
    for (const ranges of await this.slotViews()) {
      const owner = ownerOf(ranges, slot);
      if (owner !== undefined) return owner;
    }
    throw new Error(`no reachable node knows the owner of slot ${slot}`);
  }

  private async waitConverged(total: number, replicas: number): Promise<void> {
    let last = '';
    await waitFor(
      'the cluster to converge (cluster_state:ok and identical slot maps on all nodes)',
      CONVERGE_TIMEOUT_MS,
      async () => {
        const sigs = await Promise.all(
          this.nodes.map(async (n) => {
            const [info, slots] = await respCall(
              n.endpoint,
              [
                ['CLUSTER', 'INFO'],
                ['CLUSTER', 'SLOTS'],
              ],
              {
                timeoutMs: 1000,
              },
            );
            const text = String(info);
            if (!/^cluster_state:ok\r?$/m.test(text)) throw new Error(`port ${n.port}: cluster_state not ok`);
            if (!new RegExp(`^cluster_known_nodes:${total}\\r?$`, 'm').test(text)) {
              throw new Error(`port ${n.port}: does not know all ${total} nodes yet`);
            }
            const ranges = parseSlots(slots);
            if (covered(ranges) !== SLOT_COUNT) throw new Error(`port ${n.port}: slots not fully covered`);
            if (ranges.some((r) => r.replicas.length !== replicas)) {
              throw new Error(`port ${n.port}: not every master lists ${replicas} replica(s) yet`);
            }
            return signature(ranges, true);
          }),
        );
        last = sigs.join('\n');
        return sigs.every((s) => s === sigs[0]);
      },
      {
        intervalMs: 100,
        details: () => `last slot maps:\n${last}\nnode dirs: ${this.nodes.map((n) => n.dir).join(' ')}`,
      },
    );
  }
}

function ownerOf(ranges: SlotRange[], slot: number): number | undefined {
  return ranges.find((r) => r.start <= slot && slot <= r.end)?.master;
}

async function startNode(): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const busPort = await freePort();
    try {
      return await RedisServer.start({
        port,
        extraArgs: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(NODE_TIMEOUT_MS),
          '--cluster-port',
          String(busPort),
          // CLUSTER SLOTS lists a replica only once its replication offset is > 0; on an empty
          // master that happens with the first replication PING (default every 10 s).
          '--repl-ping-replica-period',
          '1',
        ],
      });
    } catch (err) {
      if (err instanceof PortInUseError && attempt < 5) continue;
      throw err;
    }
  }
}
