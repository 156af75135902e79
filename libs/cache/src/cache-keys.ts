import { createHash } from 'node:crypto';
import { CACHE_LIB, KEY_FAMILY } from './cache.constants';

/**
 * Key names of one cache namespace (`<prefix>:cache:`):
 *
 * | family | key |
 * |---|---|
 * | entry | `<prefix>:cache:<profile>:<key>` |
 * | tag set (full keys of the entries with that tag) | `<prefix>:cache:~tag:<tag>` |
 * | lease of the cross-instance single-flight | `<prefix>:cache:~lease:<profile>:<key>` |
 * | invalidation sequence number | `<prefix>:cache:~epoch` |
 * | invalidation channel (pub/sub) | `<prefix>:cache:~inv` |
 *
 * No script or multi-key command needs two of these in one slot: every script touches one key, and MGET /
 * UNLINK batches are split by slot on Cluster ({@link groupBySlot}), so no shared hash tag is needed.
 */
export class CacheKeys {
  /** `<prefix>:cache:` */
  readonly namespace: string;
  readonly epoch: string;
  readonly channel: string;

  constructor(keyPrefix: string) {
    this.namespace = `${keyPrefix}:${CACHE_LIB}:`;
    this.epoch = this.namespace + KEY_FAMILY.epoch;
    this.channel = this.namespace + KEY_FAMILY.channel;
  }

  /** `<prefix>:cache:<profile>:` — entries of a profile start with this. */
  profile(profile: string): string {
    return `${this.namespace}${profile}:`;
  }

  tag(tag: string): string {
    return `${this.namespace}${KEY_FAMILY.tag}:${tag}`;
  }

  lease(profile: string, key: string): string {
    return `${this.namespace}${KEY_FAMILY.lease}:${profile}:${key}`;
  }

  /** SCAN pattern matching exactly the entries of `profile` whose key starts with `prefix`. */
  prefixPattern(profile: string, prefix: string): string {
    return escapeGlob(this.profile(profile) + prefix) + '*';
  }

  /** SCAN pattern of everything in the namespace. */
  namespacePattern(): string {
    return escapeGlob(this.namespace) + '*';
  }
}

/**
 * Escapes a literal for a Redis glob (SCAN MATCH): `\`, `*`, `?`, `[` and `]` get a backslash, so user
 * input can only ever match itself.
 */
export function escapeGlob(literal: string): string {
  return literal.replace(/[\\*?[\]]/g, '\\$&');
}

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    t[i] = c & 0xffff;
  }
  return t;
})();

/**
 * The Cluster hash slot of a key, exactly as Redis computes it: CRC16 (XMODEM) of the UTF-8 bytes, of the
 * part between the first `{` and the first `}` after it when that part is not empty. (The cluster-key-slot
 * package ioredis uses gets `a{}b}c` wrong; ioredis survives that through MOVED, a multi-key command would not.)
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key);
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc & 0x3fff;
}

/** Groups keys by Cluster hash slot (for MGET / UNLINK on Cluster); standalone passes one group. */
export function groupBySlot<T extends string>(keys: readonly T[]): T[][] {
  const groups = new Map<number, T[]>();
  for (const key of keys) {
    const slot = keySlot(key);
    const g = groups.get(slot);
    if (g) g.push(key);
    else groups.set(slot, [key]);
  }
  return [...groups.values()];
}

/**
 * A deterministic text for method arguments (object keys sorted, so `{a, b}` and `{b, a}` give one key),
 * hashed when long. Used for the default key of `@Cacheable` service methods.
 */
export function argumentsKey(args: readonly unknown[]): string {
  if (args.length === 0) return '';
  const text = stableText(args, 0);
  return text.length <= 200 ? text : `#${createHash('sha1').update(text).digest('base64url')}`;
}

function stableText(v: unknown, depth: number): string {
  if (depth > 20) return '…';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'boolean':
      return String(v);
    case 'bigint':
      return `${v}n`;
    case 'undefined':
      return 'undefined';
    case 'object': {
      if (v === null) return 'null';
      if (v instanceof Date) return `Date(${v.getTime()})`;
      if (Buffer.isBuffer(v)) return `Buffer(${v.toString('base64')})`;
      if (Array.isArray(v)) return `[${v.map((x) => stableText(x, depth + 1)).join(',')}]`;
      if (v instanceof Map) {
        return `Map{${[...v].map(([k, x]) => `${stableText(k, depth + 1)}:${stableText(x, depth + 1)}`).join(',')}}`;
      }
      if (v instanceof Set) return `Set[${[...v].map((x) => stableText(x, depth + 1)).join(',')}]`;
      const o = v as Record<string, unknown>;
      return `{${Object.keys(o)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${stableText(o[k], depth + 1)}`)
        .join(',')}}`;
    }
    default:
      return typeof v;
  }
}

/** Throws a clear error for a key that is not a non-empty string. */
export function assertKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(
      `Cache ${what} must be a non-empty string; got ${key === '' ? 'an empty string' : typeof key}`,
    );
  }
}
