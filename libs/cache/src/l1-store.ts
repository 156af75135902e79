import { LRUCache } from 'lru-cache';
import type { CacheL1Stats } from './cache.interfaces';

/** One entry of the in-process tier: the decoded value and its lifetime. */
export interface L1Entry {
  value: unknown;
  /** Epoch ms until which the entry is fresh. */
  freshUntil: number;
  /** Epoch ms until which a stale copy may be served. */
  staleUntil: number;
  /** Epoch ms after which L1 drops it (min of staleUntil and the profile's `l1.ttl`). */
  expiresAt: number;
  /** Load time in ms, for probabilistic early refresh. */
  delta: number;
  tags: readonly string[] | undefined;
  size: number;
}

/** What a caller stores: the value, its serialized size in bytes and its lifetime. */
export type L1Input = Omit<L1Entry, 'expiresAt'>;

/** Fixed cost of an entry besides its key and value, in bytes (object, LRU slots, index). */
const ENTRY_OVERHEAD = 96;

/**
 * The in-process tier of one profile: least-recently-used, bounded by entries and by bytes, with an index
 * from tag to keys so tag invalidations do not scan, and the set of keys written while Redis was down
 * (dropped when it returns). Expiry is checked on read; there are no timers.
 */
export class L1Store {
  private readonly lru: LRUCache<string, L1Entry>;
  private readonly tagIndex = new Map<string, Set<string>>();
  /** Keys written to L1 only, because Redis was unavailable. */
  readonly localOnly = new Set<string>();
  private evictions = 0;

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
    /** Longest an entry stays in L1, ms. */
    readonly ttl: number,
  ) {
    this.lru = new LRUCache<string, L1Entry>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (e) => e.size,
      dispose: (entry, key, reason) => {
        if (reason === 'evict') this.evictions++;
        this.unindex(key, entry);
      },
    });
  }

  /** The entry if present and not past its L1 lifetime (it may be stale: check `freshUntil`). */
  get(key: string, now: number): L1Entry | undefined {
    const e = this.lru.get(key);
    if (e === undefined) return undefined;
    if (now >= e.expiresAt) {
      this.lru.delete(key);
      return undefined;
    }
    return e;
  }

  /**
   * Stores an entry; `localOnly` marks one written while Redis was down. Returns false when the entry alone
   * is larger than `maxBytes` (nothing is stored).
   */
  set(key: string, input: L1Input, now: number, localOnly = false): boolean {
    const total = input.size + 2 * key.length + ENTRY_OVERHEAD;
    const expiresAt = Math.min(input.staleUntil, now + this.ttl);
    if (total > this.maxBytes || expiresAt <= now) {
      this.lru.delete(key);
      return false;
    }
    const entry: L1Entry = {
      value: input.value,
      freshUntil: input.freshUntil,
      staleUntil: input.staleUntil,
      delta: input.delta,
      tags: input.tags,
      expiresAt,
      size: total,
    };
    this.lru.set(key, entry);
    if (entry.tags) {
      for (const tag of entry.tags) {
        let keys = this.tagIndex.get(tag);
        if (!keys) this.tagIndex.set(tag, (keys = new Set()));
        keys.add(key);
      }
    }
    if (localOnly) this.localOnly.add(key);
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  /** Deletes every entry carrying one of `tags`; returns how many. */
  deleteTags(tags: Iterable<string>): number {
    let n = 0;
    for (const tag of tags) {
      const keys = this.tagIndex.get(tag);
      if (!keys) continue;
      for (const key of [...keys]) if (this.lru.delete(key)) n++;
      this.tagIndex.delete(tag);
    }
    return n;
  }

  /** Deletes every entry whose key starts with `prefix` ('' = all); returns how many. */
  deletePrefix(prefix: string): number {
    if (prefix === '') {
      const n = this.lru.size;
      this.clear();
      return n;
    }
    let n = 0;
    for (const key of [...this.lru.keys()]) if (key.startsWith(prefix) && this.lru.delete(key)) n++;
    return n;
  }

  /** Drops the entries written while Redis was down; returns how many. */
  dropLocalOnly(): number {
    let n = 0;
    for (const key of [...this.localOnly]) if (this.lru.delete(key)) n++;
    this.localOnly.clear();
    return n;
  }

  clear(): void {
    this.lru.clear();
    this.tagIndex.clear();
    this.localOnly.clear();
  }

  get size(): number {
    return this.lru.size;
  }

  stats(): CacheL1Stats {
    return {
      entries: this.lru.size,
      bytes: this.lru.calculatedSize,
      maxEntries: this.maxEntries,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
      localOnly: this.localOnly.size,
    };
  }

  private unindex(key: string, entry: L1Entry): void {
    this.localOnly.delete(key);
    if (!entry.tags) return;
    for (const tag of entry.tags) {
      const keys = this.tagIndex.get(tag);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.tagIndex.delete(tag);
    }
  }
}
