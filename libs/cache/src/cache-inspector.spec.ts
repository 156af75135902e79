import { parseInfo, recommend, type RecommendInput } from './cache-inspector';
import type { CacheRedisStats } from './cache.interfaces';

const redis = (over: Partial<CacheRedisStats> = {}): CacheRedisStats => ({
  available: true,
  nodes: [],
  usedMemory: 10,
  maxmemory: 100,
  maxmemoryPolicy: 'allkeys-lru',
  usedMemoryPercent: 10,
  evictedKeys: 0,
  keys: { total: 1, entries: 1, complete: true, countedAt: '' },
  ...over,
});
const stats = (over: Record<string, unknown> = {}) =>
  ({
    hits: 0,
    misses: 0,
    stale: 0,
    hitRate: null,
    l1: { entries: 0, bytes: 0, maxEntries: 100, maxBytes: 1_000, evictions: 0, localOnly: 0 },
    l2: { available: true, errors: 0, writesSkipped: 0, memoryGuardUntil: null },
    invalidation: { enabled: true, synced: true },
    ...over,
  }) as unknown as RecommendInput['stats'];
const codes = (input: Partial<RecommendInput>) =>
  recommend({ stats: stats(), redis: redis(), sharedWith: [], ...input }).map((r) => r.code);

describe('recommend', () => {
  it('is quiet for a healthy, bounded, evicting cache', () => {
    expect(codes({})).toEqual([]);
  });

  it.each<[string, Partial<RecommendInput>]>([
    ['no-maxmemory', { redis: redis({ maxmemory: 0, usedMemoryPercent: null }) }],
    ['noeviction', { redis: redis({ maxmemoryPolicy: 'noeviction' }) }],
    ['memory-high', { redis: redis({ usedMemoryPercent: 81 }) }],
    ['evictions', { redis: redis({ evictedKeys: 3 }) }],
    ['shared-evicting-instance', { sharedWith: ['durable'] }],
    ['redis-unavailable', { redis: { available: false, error: 'down' } }],
    ['writes-refused-oom', { stats: stats({ l2: { available: true, memoryGuardUntil: 'x' } }) }],
    ['invalidation-not-synced', { stats: stats({ invalidation: { enabled: true, synced: false } }) }],
    ['low-hit-rate', { stats: stats({ hits: 100, misses: 900, hitRate: 0.1 }) }],
    [
      'l1-full',
      { stats: stats({ l1: { entries: 100, bytes: 10, maxEntries: 100, maxBytes: 1_000, evictions: 5 } }) },
    ],
    [
      'key-count-partial',
      { redis: redis({ keys: { total: 1, entries: 1, complete: false, countedAt: '' } }) },
    ],
  ])('says %s', (code, input) => {
    expect(codes(input)).toContain(code);
  });

  it('grades memory: warning above 80 %, critical above 95 %', () => {
    const grade = (pct: number) =>
      recommend({ stats: stats(), redis: redis({ usedMemoryPercent: pct }), sharedWith: [] })[0]?.severity;
    expect(grade(80)).toBeUndefined();
    expect(grade(90)).toBe('warning');
    expect(grade(96)).toBe('critical');
  });

  it('does not warn about sharing a noeviction instance', () => {
    expect(codes({ sharedWith: ['durable'], redis: redis({ maxmemoryPolicy: 'noeviction' }) })).not.toContain(
      'shared-evicting-instance',
    );
  });
});

describe('parseInfo', () => {
  it('reads key:value lines and skips section headers', () => {
    expect(
      parseInfo(
        '# Memory\r\nused_memory:123\r\nmaxmemory_policy:allkeys-lru\r\n\r\n# Stats\r\nevicted_keys:0',
      ),
    ).toEqual({
      used_memory: '123',
      maxmemory_policy: 'allkeys-lru',
      evicted_keys: '0',
    });
  });
});
