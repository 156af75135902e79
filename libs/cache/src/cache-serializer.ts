import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { CacheSerializationError, CacheValueTooLargeError } from './cache.errors';

/**
 * Values are JSON with a tagged escape for what JSON cannot say: `{"\u0000": [tag, payload]}` stands for
 * `undefined`, a Date, Map, Set, BigInt, Buffer/typed array, or a number JSON loses (NaN, ±Infinity, -0).
 * A user object key that starts with "\u0000" gets one more "\u0000" in front, so nothing a caller stores can
 * be mistaken for a tag. When a value has none of these, `revive` is false and decoding is one `JSON.parse`.
 */
const TAG = '\u0000';

/** Entry formats stored in Redis: a serialized value, or an HTTP response cached by `CacheInterceptor`. */
export const EntryFormat = { Value: 0, Response: 1 } as const;
export type EntryFormat = (typeof EntryFormat)[keyof typeof EntryFormat];

const VERSION = 1;
const FLAG_COMPRESSED = 1;
const FLAG_REVIVE = 2;
/** u8 version, u8 flags, u8 format, u8 reserved, f64 freshUntil, f64 staleUntil, u32 delta, u16 tags length. */
export const HEADER_SIZE = 26;

/** An HTTP response as the interceptor caches it. */
export interface CachedResponse {
  readonly body: string;
  /** Body is JSON (sent as application/json). */
  readonly json: boolean;
  readonly status: number;
  readonly etag: string;
}

/** Lifetime fields every stored entry carries. */
export interface EntryMeta {
  /** Epoch ms until which the entry is fresh. */
  freshUntil: number;
  /** Epoch ms until which a stale copy may still be served (stale-while-revalidate / stale-if-error). */
  staleUntil: number;
  /** How long the load that produced it took, ms (probabilistic early refresh uses it). */
  delta: number;
  tags: readonly string[] | undefined;
}

/** A decoded entry. */
export interface DecodedEntry extends EntryMeta {
  value: unknown;
  format: EntryFormat;
  /** Bytes of the stored form (for L1 accounting). */
  size: number;
}

/** Result of {@link serialize}. */
export interface Serialized {
  text: string;
  /** Whether decoding must walk the parsed tree (tagged values or escaped keys present). */
  revive: boolean;
}

/**
 * Serializes a value to JSON text that round-trips Date, Map, Set, BigInt, Buffer and typed arrays,
 * `undefined` (in objects, arrays and at the top) versus `null`, NaN, ±Infinity and -0. Functions and
 * symbols are dropped as JSON drops them; class instances come back as plain objects.
 * @throws TypeError for circular structures (from JSON.stringify)
 */
export function serialize(value: unknown): Serialized {
  let revive = false;
  const text = JSON.stringify(value, function (this: any, key: string, v: unknown) {
    const raw = this[key];
    switch (typeof raw) {
      case 'undefined':
        revive = true;
        return { [TAG]: ['u'] };
      case 'number':
        if (Number.isFinite(raw) && !Object.is(raw, -0)) return raw;
        revive = true;
        return { [TAG]: ['n', Object.is(raw, -0) ? '-0' : String(raw)] };
      case 'bigint':
        revive = true;
        return { [TAG]: ['B', raw.toString()] };
      case 'object': {
        if (raw === null) return null;
        if (raw instanceof Date) {
          revive = true;
          const t = raw.getTime();
          return { [TAG]: ['D', Number.isNaN(t) ? null : t] };
        }
        if (Buffer.isBuffer(raw)) {
          revive = true;
          return { [TAG]: ['b', raw.toString('base64')] };
        }
        if (ArrayBuffer.isView(raw) && !(raw instanceof DataView)) {
          revive = true;
          const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
          return { [TAG]: ['T', raw.constructor.name, bytes.toString('base64')] };
        }
        if (raw instanceof Map) {
          revive = true;
          return { [TAG]: ['M', [...raw]] };
        }
        if (raw instanceof Set) {
          revive = true;
          return { [TAG]: ['S', [...raw]] };
        }
        if (v !== raw || Array.isArray(raw)) return v; // toJSON() result, or an array
        return escapeKeys(raw as Record<string, unknown>, () => (revive = true));
      }
      default:
        return v;
    }
  });
  // JSON.stringify returns undefined only for a top-level function or symbol.
  return { text: text ?? 'null', revive };
}

/** Copies an object whose keys start with the tag character with those keys escaped; else returns it. */
function escapeKeys(o: Record<string, unknown>, mark: () => void): Record<string, unknown> {
  let needs = false;
  for (const k in o) {
    if (k.charCodeAt(0) === 0 && Object.prototype.hasOwnProperty.call(o, k)) {
      needs = true;
      break;
    }
  }
  if (!needs) return o;
  mark();
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) define(out, k.charCodeAt(0) === 0 ? TAG + k : k, o[k]);
  return out;
}

/**
 * Parses what {@link serialize} produced. Never touches `Object.prototype`: `__proto__` keys stay own
 * properties.
 */
export function deserialize(text: string, revive: boolean): unknown {
  const parsed: unknown = JSON.parse(text);
  return revive ? reviveValue(parsed) : parsed;
}

const TYPED_ARRAYS: Record<string, new (b: ArrayBuffer, o: number, l: number) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

function reviveValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveValue(v[i]);
    return v;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === TAG && Array.isArray(o[TAG])) return reviveTagged(o[TAG] as unknown[]);
  let escaped = false;
  for (const k of keys) {
    if (k.charCodeAt(0) === 0) escaped = true;
    else {
      const r = reviveValue(o[k]);
      if (r !== o[k]) define(o, k, r);
    }
  }
  if (!escaped) return o;
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    define(out, k.charCodeAt(0) === 0 ? k.slice(1) : k, k.charCodeAt(0) === 0 ? reviveValue(o[k]) : o[k]);
  }
  return out;
}

function reviveTagged(t: unknown[]): unknown {
  switch (t[0]) {
    case 'u':
      return undefined;
    case 'n':
      return t[1] === '-0' ? -0 : Number(t[1]);
    case 'B':
      return BigInt(t[1] as string);
    case 'D':
      return new Date(t[1] === null ? NaN : (t[1] as number));
    case 'b':
      return Buffer.from(t[1] as string, 'base64');
    case 'T': {
      const Ctor = TYPED_ARRAYS[t[1] as string] ?? Uint8Array;
      const bytes = Buffer.from(t[2] as string, 'base64');
      const copy = new ArrayBuffer(bytes.length);
      new Uint8Array(copy).set(bytes);
      const per = (Ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
      return new Ctor(copy, 0, bytes.length / per);
    }
    case 'M':
      return new Map((t[1] as unknown[][]).map(([k, val]) => [reviveValue(k), reviveValue(val)]));
    case 'S':
      return new Set((t[1] as unknown[]).map(reviveValue));
    default:
      throw new Error(`unknown cache value tag ${JSON.stringify(t[0])}`);
  }
}

/** Assigns an own data property; for `__proto__` a plain assignment would set the prototype instead. */
function define(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[k] = v;
  }
}

/** Options of {@link CacheCodec}. */
export interface CodecOptions {
  compression: { threshold: number; level: number } | null;
  maxValueSize: number;
}

/**
 * Turns values and cached HTTP responses into the bytes stored in Redis and back: a 26-byte header
 * (freshness, stale window, load time, tags) followed by the payload, deflate-raw compressed above the
 * threshold. Sizes are checked against `maxValueSize` before anything is stored, and inflating is capped
 * by it too (a corrupt or hostile entry cannot expand without bound).
 */
export class CacheCodec {
  constructor(private readonly options: CodecOptions) {}

  /**
   * @throws CacheValueTooLargeError when the serialized value exceeds `maxValueSize`
   * @throws CacheSerializationError when the value cannot be serialized
   */
  encodeValue(key: string, value: unknown, meta: EntryMeta): Buffer {
    let s: Serialized;
    try {
      s = serialize(value);
    } catch (err) {
      throw new CacheSerializationError(key, err);
    }
    const size = Buffer.byteLength(s.text);
    if (size > this.options.maxValueSize)
      throw new CacheValueTooLargeError(key, size, this.options.maxValueSize);
    return this.frame(
      { format: EntryFormat.Value, flags: s.revive ? FLAG_REVIVE : 0, payloadSize: size },
      meta,
      (b, o) => b.write(s.text, o),
    );
  }

  /** @throws CacheValueTooLargeError when the body exceeds `maxValueSize` */
  encodeResponse(key: string, r: CachedResponse, meta: EntryMeta): Buffer {
    const etagLen = Buffer.byteLength(r.etag, 'latin1');
    const bodyLen = Buffer.byteLength(r.body);
    if (bodyLen > this.options.maxValueSize) {
      throw new CacheValueTooLargeError(key, bodyLen, this.options.maxValueSize);
    }
    const size = 4 + etagLen + bodyLen;
    return this.frame({ format: EntryFormat.Response, flags: 0, payloadSize: size }, meta, (b, o) => {
      b.writeUInt16LE(r.status, o);
      b.writeUInt8(r.json ? 1 : 0, o + 2);
      b.writeUInt8(etagLen, o + 3);
      b.write(r.etag, o + 4, 'latin1');
      b.write(r.body, o + 4 + etagLen);
    });
  }

  /**
   * Decodes a stored entry.
   * @throws Error when the bytes are not an entry of this version (callers treat it as a miss)
   */
  decode(buf: Buffer): DecodedEntry {
    if (buf.length < HEADER_SIZE || buf[0] !== VERSION) throw new Error('not a cache entry of this version');
    const flags = buf[1];
    const format = buf[2] as EntryFormat;
    const tagsLen = buf.readUInt16LE(24);
    const start = HEADER_SIZE + tagsLen;
    const tags =
      tagsLen === 0 ? undefined : (JSON.parse(buf.toString('utf8', HEADER_SIZE, start)) as string[]);
    let payload = buf;
    let offset = start;
    if (flags & FLAG_COMPRESSED) {
      payload = inflateRawSync(buf.subarray(start), { maxOutputLength: this.options.maxValueSize + 1_024 });
      offset = 0;
    }
    let value: unknown;
    if (format === EntryFormat.Response) {
      const etagLen = payload[offset + 3];
      value = {
        status: payload.readUInt16LE(offset),
        json: payload[offset + 2] === 1,
        etag: payload.toString('latin1', offset + 4, offset + 4 + etagLen),
        body: payload.toString('utf8', offset + 4 + etagLen),
      } satisfies CachedResponse;
    } else {
      value = deserialize(payload.toString('utf8', offset), (flags & FLAG_REVIVE) !== 0);
    }
    return {
      value,
      format,
      freshUntil: buf.readDoubleLE(4),
      staleUntil: buf.readDoubleLE(12),
      delta: buf.readUInt32LE(20),
      tags,
      size: buf.length,
    };
  }

  /** Reads only the lifetime fields (for `ttl` and `has`, which fetch just the header with GETRANGE). */
  static decodeLifetime(buf: Buffer): { freshUntil: number; staleUntil: number } | undefined {
    if (buf.length < 20 || buf[0] !== VERSION) return undefined;
    return { freshUntil: buf.readDoubleLE(4), staleUntil: buf.readDoubleLE(12) };
  }

  private frame(
    kind: { format: EntryFormat; flags: number; payloadSize: number },
    meta: EntryMeta,
    writePayload: (b: Buffer, offset: number) => void,
  ): Buffer {
    const { format, payloadSize } = kind;
    let flags = kind.flags;
    const tagsText = meta.tags && meta.tags.length > 0 ? JSON.stringify(meta.tags) : '';
    const tagsLen = tagsText ? Buffer.byteLength(tagsText) : 0;
    if (tagsLen > 0xffff) throw new RangeError('tags of one entry must fit in 64 KiB');
    const c = this.options.compression;
    let out: Buffer;
    if (c && payloadSize >= c.threshold) {
      const raw = Buffer.allocUnsafe(payloadSize);
      writePayload(raw, 0);
      const packed = deflateRawSync(raw, { level: c.level });
      if (packed.length < payloadSize) {
        out = Buffer.allocUnsafe(HEADER_SIZE + tagsLen + packed.length);
        packed.copy(out, HEADER_SIZE + tagsLen);
        flags |= FLAG_COMPRESSED;
      } else {
        out = Buffer.allocUnsafe(HEADER_SIZE + tagsLen + payloadSize);
        raw.copy(out, HEADER_SIZE + tagsLen);
      }
    } else {
      out = Buffer.allocUnsafe(HEADER_SIZE + tagsLen + payloadSize);
      writePayload(out, HEADER_SIZE + tagsLen);
    }
    out[0] = VERSION;
    out[1] = flags;
    out[2] = format;
    out[3] = 0;
    out.writeDoubleLE(meta.freshUntil, 4);
    out.writeDoubleLE(meta.staleUntil, 12);
    out.writeUInt32LE(Math.min(0xffffffff, Math.max(0, Math.round(meta.delta))), 20);
    out.writeUInt16LE(tagsLen, 24);
    if (tagsLen) out.write(tagsText, HEADER_SIZE);
    return out;
  }
}
