import { LRUCache } from 'lru-cache';

export interface FallbackStoreOptions<V> {
  /** Most entries kept; the least recently used go first. @default 10_000 */
  maxEntries?: number;
  /** Most bytes kept, as measured by `sizeOf`. @default 16 MiB */
  maxBytes?: number;
  /** Default time to live of an entry, in ms; 0 = until evicted. @default 0 */
  ttl?: number;
  /** Size of one entry in bytes. @default a cheap estimate of the key and a JSON-like value */
  sizeOf?: (value: V, key: string) => number;
}

export interface FallbackStoreStats {
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  hits: number;
  misses: number;
  sets: number;
  evictions: number;
  rejected: number;
}

/**
 * Bounded in-memory map that libs use while Redis is unavailable (cache L1 copies, local limiter counters,
 * short-lived session copies). Bounded by entries and by bytes, TTL-aware, least-recently-used eviction,
 * and no timers: expired entries are dropped when touched or evicted, so there is nothing to stop.
 */
export class FallbackStore<V extends NonNullable<unknown>> {
  private readonly lru: LRUCache<string, V>;
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  private hits = 0;
  private misses = 0;
  private sets = 0;
  private evictions = 0;
  private rejected = 0;

  constructor(options: FallbackStoreOptions<V> = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    const sizeOf = options.sizeOf ?? estimateSize;
    this.lru = new LRUCache<string, V>({
      max: this.maxEntries,
      maxSize: this.maxBytes,
      sizeCalculation: (value, key) => Math.max(1, Math.ceil(sizeOf(value, key))),
      ttl: options.ttl ?? 0,
      ttlAutopurge: false,
      allowStale: false,
      updateAgeOnGet: false,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.evictions++;
      },
    });
  }

  get(key: string): V | undefined {
    const value = this.lru.get(key);
    if (value === undefined) this.misses++;
    else this.hits++;
    return value;
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  /**
   * Store a value. Returns false (and stores nothing) when the single entry is larger than `maxBytes`.
   * @param ttl time to live in ms, overriding the store default; 0 = until evicted
   */
  set(key: string, value: V, ttl?: number): boolean {
    this.lru.set(key, value, ttl === undefined ? undefined : { ttl });
    if (!this.lru.has(key)) {
      this.rejected++;
      return false;
    }
    this.sets++;
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  /** Remaining time to live in ms, `Infinity` without a TTL, or 0 when absent. */
  ttl(key: string): number {
    if (!this.lru.has(key)) return 0;
    return this.lru.getRemainingTTL(key);
  }

  keys(): IterableIterator<string> {
    return this.lru.keys();
  }

  clear(): void {
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }

  stats(): FallbackStoreStats {
    return {
      entries: this.lru.size,
      bytes: this.lru.calculatedSize,
      maxEntries: this.maxEntries,
      maxBytes: this.maxBytes,
      hits: this.hits,
      misses: this.misses,
      sets: this.sets,
      evictions: this.evictions,
      rejected: this.rejected,
    };
  }
}

/**
 * Rough byte size of a key and value: strings as UTF-16 (2 bytes a char), buffers by length, numbers 8,
 * objects walked to a bounded depth. It only has to be monotonic and cheap, not exact.
 */
export function estimateSize(value: unknown, key = ''): number {
  return 2 * key.length + sizeOfValue(value, 0);
}

function sizeOfValue(value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return 2 * value.length;
    case 'number':
    case 'bigint':
      return 8;
    case 'boolean':
      return 4;
    case 'object': {
      if (value === null) return 4;
      if (Buffer.isBuffer(value) || value instanceof Uint8Array) return value.byteLength;
      if (depth > 8) return 64;
      let size = 16;
      if (value instanceof Map) {
        for (const [k, v] of value) size += sizeOfValue(k, depth + 1) + sizeOfValue(v, depth + 1);
      } else if (value instanceof Set || Array.isArray(value)) {
        for (const v of value) size += 8 + sizeOfValue(v, depth + 1);
      } else {
        for (const k in value) {
          size += 2 * k.length + sizeOfValue((value as Record<string, unknown>)[k], depth + 1);
        }
      }
      return size;
    }
    default:
      return 8;
  }
}
