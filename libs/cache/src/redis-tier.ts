import {
  defineScripts,
  isRedisBudgetSpent,
  type ManagedRedisClient,
  type RedisConnection,
  type ScriptCallers,
} from '@redwing/redis';
import type { Redis } from 'ioredis';
import { masterNodes } from './cache-inspector';
import { groupBySlot, type CacheKeys } from './cache-keys';
import { addTagMemberScript } from './scripts/add-tag-member.script';
import { publishInvalidationScript } from './scripts/publish-invalidation.script';
import { releaseLeaseScript } from './scripts/release-lease.script';

/** The cache's Lua scripts (typed callers, EVALSHA with EVAL fallback). */
export const CACHE_SCRIPTS = {
  addTagMember: addTagMemberScript,
  publishInvalidation: publishInvalidationScript,
  releaseLease: releaseLeaseScript,
};

/** Keys per UNLINK on a standalone server (Cluster: one UNLINK per hash slot). */
const UNLINK_BATCH = 1_000;
/** A tag set outlives its entries by this much, ms (clock skew between instances). */
const TAG_SLACK = 1_000;

/**
 * Every command the cache sends to Redis (L2), in one place: entries, tag sets, leases and namespace scans,
 * with the Cluster rules applied (multi-key commands split by hash slot, SCAN on every master). Errors are
 * the Redis client's own (`RedisUnavailableError`, `RedisCommandTimeoutError`, reply errors); the service
 * decides how to serve around them.
 */
export class RedisTier {
  private readonly command: RedisConnection;
  /** Bumped by {@link invalidated}: every write and invalidation this instance applies. */
  generation = 0;
  /** Reads asked for in this turn of the event loop, not sent yet. */
  private batch: Map<string, PendingRead> | null = null;
  /** Reads asked for and not answered yet (sent or not), that later reads of the key may share. */
  private readonly reading = new Map<string, PendingRead>();
  private readonly isCluster: boolean;
  private readonly scripts: ScriptCallers<typeof CACHE_SCRIPTS>;

  constructor(
    private readonly client: ManagedRedisClient,
    private readonly keys: CacheKeys,
  ) {
    this.command = client.command;
    this.isCluster = client.topology === 'cluster';
    this.scripts = defineScripts(this.command, CACHE_SCRIPTS);
  }

  /**
   * The raw value of one entry, or null when absent: one GET. Reads asked for in the same turn of the event
   * loop go out together when it ends (`setImmediate`), in one socket write instead of one per read (the
   * way node-redis batches its writes); reads of one key in a batch share its GET.
   * A read of a key that is already being read shares that read's reply, unless {@link invalidated} was
   * called since it was sent. A batch is sent in the async context of its first read (so a timeout spends
   * that request's Redis budget); a read whose request has spent its budget is not batched (refused at once).
   */
  read(fullKey: string): Promise<Buffer | null> {
    return this.readTracked(fullKey).promise;
  }

  /**
   * {@link read}, with what it takes to tell whether the reply may be copied into L1: compare
   * `sentAt` with {@link generation} once it has settled (equal: no write or invalidation was applied since
   * the read went out).
   */
  readTracked(fullKey: string): PendingRead {
    // A request whose Redis budget is spent sends its own GET, which is refused at once (see
    // isRedisBudgetSpent): joining another read would make it wait for Redis again.
    if (isRedisBudgetSpent()) {
      const direct = new PendingRead();
      direct.sentAt = this.generation;
      void this.send(() => this.command.getBuffer(fullKey)).then(direct.resolve, direct.reject);
      return direct;
    }
    let pending = this.reading.get(fullKey);
    if (pending !== undefined) return pending;
    let batch = this.batch;
    if (batch === null) {
      batch = this.batch = new Map();
      setImmediate(this.flushReads);
    }
    // Not sent yet, so it goes out after everything sent so far: it may be shared.
    pending = batch.get(fullKey);
    if (pending === undefined) {
      pending = new PendingRead();
      batch.set(fullKey, pending);
    }
    this.reading.set(fullKey, pending);
    return pending;
  }

  /**
   * A write or an invalidation is being applied: reads asked for from now on do not share the replies of
   * reads sent before it. A `local` one (this instance's own, sent on this connection after those reads)
   * also keeps those reads out of L1 (their `sentAt` no longer matches). Another instance's message is not
   * ordered with our reads, so it cannot tell which of them it overtook: they fill L1 as before, and the
   * message's own deletion, or the entry's L1 lifetime, bounds what a late one leaves there.
   */
  invalidated(origin: 'local' | 'remote'): void {
    if (origin === 'local') this.generation++;
    if (this.reading.size > 0) this.reading.clear();
  }

  /**
   * Sends the reads batched so far (see {@link read}): one GET per key, each its own command (own timeout,
   * counted by the breaker and the metrics), written to the socket together — corked, so the batch is one
   * `writev` instead of one write per GET. (On Cluster each GET goes to its node as usual.)
   */
  private readonly flushReads = (): void => {
    const batch = this.batch;
    this.batch = null;
    if (batch === null) return;
    const generation = this.generation;
    const socket = batch.size > 1 && !this.isCluster ? (this.command as Redis).stream : undefined;
    socket?.cork();
    try {
      for (const [key, pending] of batch) {
        pending.sentAt = generation;
        void this.send(() => this.command.getBuffer(key)).then(
          (buf) => this.settle(key, pending).resolve(buf),
          (err: unknown) => this.settle(key, pending).reject(err),
        );
      }
    } finally {
      socket?.uncork();
    }
  };

  /** A read is answered: later reads of its key go to Redis again. */
  private settle(key: string, pending: PendingRead): PendingRead {
    if (this.reading.get(key) === pending) this.reading.delete(key);
    return pending;
  }

  /** Runs a command; one that throws instead of rejecting (outside any promise here) rejects too. */
  private send<T>(command: () => Promise<T>): Promise<T> {
    try {
      return command();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The current invalidation sequence number (0 when none was published yet). */
  async readEpoch(): Promise<number> {
    const raw = await this.command.get(this.keys.epoch);
    return raw === null ? 0 : Number(raw);
  }

  /**
   * Publishes an invalidation message body with the next sequence number (one script: INCR + PUBLISH).
   * Resolves to the number, or -1 when the counter held no integer and was reset.
   */
  publishInvalidation(body: string): Promise<number> {
    return this.scripts.publishInvalidation([this.keys.epoch], [this.keys.channel, body]);
  }

  /** Raw values of several entries (null where absent): one MGET, or one per hash slot on Cluster. */
  async readMany(fullKeys: readonly string[]): Promise<Map<string, Buffer | null>> {
    const found = new Map<string, Buffer | null>();
    const groups = this.isCluster ? groupBySlot(fullKeys) : [fullKeys];
    await Promise.all(
      groups.map(async (g) => {
        const bufs = await this.command.mgetBuffer(...g);
        g.forEach((k, j) => found.set(k, bufs[j]));
      }),
    );
    return found;
  }

  /** The first `bytes` of an entry (its header), or null when absent. */
  async readHead(fullKey: string, bytes: number): Promise<Buffer | null> {
    const head = await this.command.getrangeBuffer(fullKey, 0, bytes - 1);
    return head.length > 0 ? head : null;
  }

  /**
   * Stores an entry for `px` ms and records it in its tag sets (SADD before SET: an invalidation that
   * reads the set meanwhile deletes the entry too). `onForeignTag` is told about a tag key that is not a set.
   */
  async write(
    entry: { fullKey: string; buf: Buffer; px: number; tags: readonly string[] | undefined },
    onForeignTag: (tagKey: string) => void,
  ): Promise<void> {
    const { fullKey, buf, px, tags } = entry;
    const ops: Array<Promise<unknown>> = [];
    for (const tag of tags ?? []) {
      const tagKey = this.keys.tag(tag);
      ops.push(
        this.scripts.addTagMember([tagKey], [fullKey, px + TAG_SLACK]).then((r) => {
          if (r === -1) onForeignTag(tagKey);
        }),
      );
    }
    ops.push(this.command.set(fullKey, buf, 'PX', px));
    await Promise.all(ops);
  }

  /** UNLINKs entries (split by hash slot on Cluster); resolves to how many existed. */
  async unlink(fullKeys: readonly string[]): Promise<number> {
    if (fullKeys.length === 0) return 0;
    const groups = this.isCluster ? groupBySlot(fullKeys) : chunk(fullKeys, UNLINK_BATCH);
    const counts = await Promise.all(groups.map((g) => this.command.unlink(...g)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Deletes the entries in one tag set (SSCAN, so a large set does not block Redis) and removes them from
   * it with SREM, not DEL: a member added meanwhile by a concurrent write stays. Only members inside the
   * namespace are deleted.
   */
  async deleteTag(tag: string): Promise<number> {
    const tagKey = this.keys.tag(tag);
    const ns = this.keys.namespace;
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, members] = await this.command.sscan(tagKey, cursor, 'COUNT', 1_000);
      cursor = next;
      const mine = members.filter((m) => m.startsWith(ns) && m[ns.length] !== '~');
      if (mine.length) deleted += await this.unlink(mine);
      if (members.length) await this.command.srem(tagKey, ...members);
    } while (cursor !== '0');
    return deleted;
  }

  /**
   * Deletes a profile's entries whose key starts with `prefix`: SCAN MATCH with the escaped literal on every
   * master, then UNLINK. Never KEYS.
   */
  async deletePrefix(profile: string, prefix: string): Promise<number> {
    const mustStart = this.keys.profile(profile) + prefix;
    const pattern = this.keys.prefixPattern(profile, prefix);
    const counts = await Promise.all(
      masterNodes(this.client).map(async (node) => {
        let deleted = 0;
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
          cursor = next;
          // The pattern is escaped; checking the literal prefix as well costs nothing.
          const mine = found.filter((k) => k.startsWith(mustStart));
          if (mine.length) deleted += await this.unlink(mine);
        } while (cursor !== '0');
        return deleted;
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Takes the lease (`SET NX PX`); true when it is ours now. */
  async acquireLease(leaseKey: string, token: string, ttl: number): Promise<boolean> {
    return (await this.command.set(leaseKey, token, 'PX', ttl, 'NX')) === 'OK';
  }

  /** Releases our lease, publishing `body` on `channel` unless it is ''. 1 = released, -1 = not ours any more. */
  releaseLease(
    leaseKey: string,
    token: string,
    wake: { channel: string; body: string } | null,
  ): Promise<1 | -1> {
    return this.scripts.releaseLease([leaseKey], [token, wake?.channel ?? '', wake?.body ?? '']);
  }

  /** Deletes one entry, best effort (an unreadable entry). */
  drop(fullKey: string): void {
    this.command.unlink(fullKey).catch(() => undefined);
  }
}

/** One read: the promise its callers share, how it settles, and the generation it was sent in. */
export class PendingRead {
  readonly promise: Promise<Buffer | null>;
  /** {@link RedisTier.generation} when the read went out (-1 until then). */
  sentAt = -1;
  resolve!: (value: Buffer | null) => void;
  reject!: (err: unknown) => void;

  constructor() {
    this.promise = new Promise<Buffer | null>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
