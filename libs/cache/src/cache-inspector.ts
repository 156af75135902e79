import type { ManagedRedisClient, RedisClientManager } from '@redwing/redis';
import type { Cluster, Redis } from 'ioredis';
import type { CacheKeys } from './cache-keys';
import type {
  CacheRecommendation,
  CacheRedisNodeStats,
  CacheRedisStats,
  CacheStats,
} from './cache.interfaces';

/** SCAN stops after this many keys per node (the count is then marked incomplete). */
const MAX_SCANNED_PER_NODE = 1_000_000;
/** Wall-time budget of one key count per node, ms. */
const SCAN_BUDGET = 1_000;
/** A key count is reused for this long, ms (INFO is asked every time: it is cheap, and must not look healthy when Redis is not). */
const KEYS_MAX_AGE = 5_000;

/** The nodes to ask: the connection itself, or every master of a Cluster. */
export function masterNodes(client: ManagedRedisClient): Redis[] {
  return client.topology === 'cluster'
    ? (client.command as Cluster).nodes('master')
    : [client.command as Redis];
}

/** INFO text → key/value pairs. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && line[0] !== '#') out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/**
 * Reads what the memory guard and `GET /cache/stats` report about Redis: `INFO memory` and `INFO stats`
 * of every master, and the number of keys in the cache namespace, counted with SCAN (never KEYS), bounded
 * in keys and time and reused for a few seconds.
 */
export class CacheInspector {
  private keys: { at: number; value: CacheRedisStats['keys'] } | undefined;
  private counting: Promise<CacheRedisStats['keys']> | undefined;

  constructor(
    private readonly client: ManagedRedisClient,
    private readonly keyNames: CacheKeys,
  ) {}

  /** @throws the Redis error when Redis cannot be asked (the caller reports it as unavailable) */
  async inspect(): Promise<CacheRedisStats> {
    const nodes = await this.readInfo();
    const keys =
      this.keys && Date.now() - this.keys.at < KEYS_MAX_AGE ? this.keys.value : await this.countKeys();
    const usedMemory = nodes.reduce((n, x) => n + x.usedMemory, 0);
    const maxmemory = nodes.every((x) => x.maxmemory > 0) ? nodes.reduce((n, x) => n + x.maxmemory, 0) : 0;
    const policies = [...new Set(nodes.map((x) => x.maxmemoryPolicy))];
    return {
      available: true,
      nodes,
      usedMemory,
      maxmemory,
      maxmemoryPolicy: policies.join(','),
      usedMemoryPercent: maxmemory > 0 ? round1((usedMemory / maxmemory) * 100) : null,
      evictedKeys: nodes.reduce((n, x) => n + x.evictedKeys, 0),
      keys,
    };
  }

  private async readInfo(): Promise<CacheRedisNodeStats[]> {
    const nodes = await Promise.all(
      masterNodes(this.client).map(async (node) => {
        const info = parseInfo(await node.info('memory', 'stats'));
        const usedMemory = Number(info.used_memory ?? 0);
        const maxmemory = Number(info.maxmemory ?? 0);
        return {
          address: `${node.options.host ?? '?'}:${node.options.port ?? '?'}`,
          usedMemory,
          usedMemoryHuman: info.used_memory_human ?? '',
          maxmemory,
          maxmemoryPolicy: info.maxmemory_policy ?? 'unknown',
          usedMemoryPercent: maxmemory > 0 ? round1((usedMemory / maxmemory) * 100) : null,
          evictedKeys: Number(info.evicted_keys ?? 0),
        } satisfies CacheRedisNodeStats;
      }),
    );
    return nodes;
  }

  private countKeys(): Promise<CacheRedisStats['keys']> {
    this.counting ??= (async () => {
      try {
        let total = 0;
        let entries = 0;
        let complete = true;
        const pattern = this.keyNames.namespacePattern();
        const special = this.keyNames.namespace + '~';
        await Promise.all(
          masterNodes(this.client).map(async (node) => {
            const deadline = Date.now() + SCAN_BUDGET;
            let cursor = '0';
            let scanned = 0;
            do {
              const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
              cursor = next;
              scanned += found.length;
              total += found.length;
              for (const key of found) if (!key.startsWith(special)) entries++;
              if (scanned >= MAX_SCANNED_PER_NODE || Date.now() > deadline) {
                complete = cursor === '0';
                break;
              }
            } while (cursor !== '0');
          }),
        );
        const value = { total, entries, complete, countedAt: new Date().toISOString() };
        this.keys = { at: Date.now(), value };
        return value;
      } finally {
        this.counting = undefined;
      }
    })();
    return this.counting;
  }
}

/** Inputs of {@link recommend}. */
export interface RecommendInput {
  stats: Omit<CacheStats, 'redis' | 'recommendations'>;
  redis: CacheStats['redis'];
  /** Other clients of the app that point at the same Redis as the cache. */
  sharedWith: string[];
}

const EVICTING = /^(allkeys|volatile)-(lru|lfu|random|ttl)$/;

/** Advice for the operator, from the stats. Pure, so each rule is unit-tested. */
export function recommend({ stats, redis, sharedWith }: RecommendInput): CacheRecommendation[] {
  const out: CacheRecommendation[] = [];
  if (!redis || !redis.available) {
    out.push({
      code: 'redis-unavailable',
      severity: 'critical',
      message:
        'Redis is unavailable: L1 serves what it holds and everything else is loaded without caching in Redis. ' +
        'Check GET /health/ready and the Redis logs.',
    });
  } else {
    if (redis.maxmemory === 0) {
      out.push({
        code: 'no-maxmemory',
        severity: 'warning',
        message:
          'No maxmemory is set: the cache grows until the host runs out of memory. Set maxmemory and ' +
          'maxmemory-policy allkeys-lru (or allkeys-lfu) on the cache instance.',
      });
    }
    if (redis.maxmemoryPolicy.split(',').includes('noeviction')) {
      out.push({
        code: 'noeviction',
        severity: 'warning',
        message:
          'maxmemory-policy is noeviction: when memory is full Redis refuses writes (the cache then stops ' +
          'writing to Redis for a while). Use allkeys-lru or allkeys-lfu for a cache; keep noeviction for queues ' +
          'on their own client (e.g. REDIS_DURABLE_URL).',
      });
    }
    const pct = redis.usedMemoryPercent;
    if (pct !== null && pct > 80) {
      out.push({
        code: 'memory-high',
        severity: pct > 95 ? 'critical' : 'warning',
        message:
          `Redis uses ${pct}% of maxmemory (over 80%): evictions or refused writes are near. Raise maxmemory, ` +
          `shorten TTLs, or cache smaller values.`,
      });
    }
    if (redis.evictedKeys > 0) {
      out.push({
        code: 'evictions',
        severity: 'info',
        message: `Redis has evicted ${redis.evictedKeys} key(s) since it started: memory is under pressure.`,
      });
    }
    if (sharedWith.length > 0 && EVICTING.test(redis.maxmemoryPolicy)) {
      out.push({
        code: 'shared-evicting-instance',
        severity: 'warning',
        message:
          `Client(s) ${sharedWith.join(', ')} use the same evicting Redis as the cache (${redis.maxmemoryPolicy}); ` +
          `queues, sessions and locks there can be evicted. Point them at a noeviction instance.`,
      });
    }
    if (!redis.keys.complete) {
      out.push({
        code: 'key-count-partial',
        severity: 'info',
        message: 'The namespace key count stopped early (time or size bound); the figure is a lower bound.',
      });
    }
  }
  if (stats.l2.memoryGuardUntil) {
    out.push({
      code: 'writes-refused-oom',
      severity: 'critical',
      message:
        'Redis refused cache writes for lack of memory (OOM); writes to Redis are paused for a while and values ' +
        'are kept in L1 only. Raise maxmemory or use an allkeys-* eviction policy.',
    });
  }
  if (stats.invalidation.enabled && !stats.invalidation.synced && stats.l2.available) {
    out.push({
      code: 'invalidation-not-synced',
      severity: 'warning',
      message:
        'Invalidation messages are not arriving (subscriber disconnected or re-syncing); L1 is bypassed until they do.',
    });
  }
  const lookups = stats.hits + stats.misses + stats.stale;
  if (lookups >= 1_000 && stats.hitRate !== null && stats.hitRate < 0.5) {
    out.push({
      code: 'low-hit-rate',
      severity: 'info',
      message:
        `Hit rate is ${Math.round(stats.hitRate * 100)}% over ${lookups} lookups: check that keys do not vary per ` +
        `request (query strings, users) and that TTLs are not shorter than the time between reads.`,
    });
  }
  const l1 = stats.l1;
  if (
    l1.maxEntries > 0 &&
    (l1.entries >= 0.95 * l1.maxEntries || l1.bytes >= 0.95 * l1.maxBytes) &&
    l1.evictions > 0
  ) {
    out.push({
      code: 'l1-full',
      severity: 'info',
      message:
        `L1 is full (${l1.entries} entries, ${l1.bytes} bytes) and has evicted ${l1.evictions}; raise l1.maxEntries ` +
        `or l1.maxBytes if memory allows.`,
    });
  }
  return out;
}

/** Names of the other clients of `manager` that point at the same Redis address as `client`. */
export function clientsSharing(manager: RedisClientManager, client: ManagedRedisClient): string[] {
  const address = (c: ManagedRedisClient) => c.url.replace(/^[a-z]+:\/\/([^@/]*@)?/, '').replace(/\/0$/, '');
  const mine = address(client);
  return manager
    .all()
    .filter((c) => c !== client && address(c) === mine)
    .map((c) => c.name);
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
