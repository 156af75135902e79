import fc from 'fast-check';
import { deflateRawSync } from 'node:zlib';
import {
  CacheCodec,
  deserialize,
  EntryFormat,
  HEADER_SIZE,
  serialize,
  type EntryMeta,
} from './cache-serializer';
import { CacheSerializationError, CacheValueTooLargeError } from './cache.errors';

/**
 * Strict structural equality: same prototypes, same own enumerable keys (so `{a: undefined}` differs from
 * `{}`), Object.is on primitives (-0 ≠ 0, NaN = NaN), Dates by time (two invalid dates are equal, unlike
 * util.isDeepStrictEqual), Maps/Sets by entries in order, typed arrays by type and bytes.
 */
function same(a: unknown, b: unknown, path = '$'): string | null {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return Object.is(a, b) ? null : `${path}: ${String(a)} !== ${String(b)}`;
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: different prototypes`;
  if (a instanceof Date)
    return Object.is(a.getTime(), (b as Date).getTime()) ? null : `${path}: dates differ`;
  if (ArrayBuffer.isView(a)) {
    const x = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    const y = Buffer.from(
      (b as ArrayBufferView).buffer,
      (b as ArrayBufferView).byteOffset,
      (b as ArrayBufferView).byteLength,
    );
    return x.equals(y) ? null : `${path}: bytes differ`;
  }
  if (a instanceof Map || a instanceof Set) {
    const x = [...a];
    const y = [...(b as Map<unknown, unknown> | Set<unknown>)];
    return same(x, y, `${path}<entries>`);
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i]))
    return `${path}: keys ${JSON.stringify(ka)} vs ${JSON.stringify(kb)}`;
  for (const k of ka) {
    const d = same(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      `${path}.${JSON.stringify(k)}`,
    );
    if (d) return d;
  }
  return null;
}

const meta: EntryMeta = {
  freshUntil: 1_700_000_000_000,
  staleUntil: 1_700_000_060_000,
  delta: 42,
  tags: undefined,
};
const roundTrip = (v: unknown) => {
  const s = serialize(v);
  return deserialize(s.text, s.revive);
};

/** Leaves JSON cannot carry, mixed into fast-check's `anything()`. */
const specialLeaves = [
  fc.constant(undefined),
  fc.constant(null),
  fc.date(), // includes invalid dates
  fc.bigInt(),
  fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
  fc.constantFrom(NaN, Infinity, -Infinity, -0),
  fc.constantFrom('\u0000', '\u0000u', '{"\u0000":["u"]}', '__proto__'),
];
const hostileKeys = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '\u0000', '\u0000\u0000', '\u0000x', 'toJSON'),
);
const value = fc.anything({
  key: hostileKeys,
  values: specialLeaves,
  maxDepth: 4,
  maxKeys: 5,
  withDate: true,
  withMap: true,
  withSet: true,
  withBigInt: true,
  withTypedArray: true,
  withNullPrototype: false,
  withBoxedValues: false,
  withSparseArray: false,
});

describe('serializer round-trip (RELIABILITY: serializer round-trip)', () => {
  it('decode(encode(x)) deep-equals x for 10,000 generated values, and Object.prototype is unchanged', () => {
    const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    let cases = 0;
    let withProtoKey = 0;
    const hasProtoKey = (v: unknown, depth = 0): boolean =>
      typeof v === 'object' &&
      v !== null &&
      depth < 6 &&
      (Object.prototype.hasOwnProperty.call(v, '__proto__') ||
        (v instanceof Map ? [...v.values()] : v instanceof Set ? [...v] : Object.values(v)).some((c) =>
          hasProtoKey(c, depth + 1),
        ));
    fc.assert(
      fc.property(value, (x) => {
        cases++;
        if (hasProtoKey(x)) withProtoKey++;
        const back = roundTrip(x);
        expect(same(back, x)).toBeNull();
        // Nothing leaked onto the prototype of every object.
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 10_000, seed: 20_260_101 },
    );
    expect(cases).toBe(10_000);
    // The generator really produced hostile keys (else this test could not fail for them).
    expect(withProtoKey).toBeGreaterThan(100);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoKeys);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('keeps __proto__ keys as own properties and never sets a prototype', () => {
    const evil = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": {"x": 1}}}') as Record<
      string,
      unknown
    >;
    // An escaped key makes the decoder build a fresh object; there a plain assignment of `__proto__` would set
    // the prototype instead of a property.
    const withDate: Record<string, unknown> = { when: new Date(0), '\u0000x': 1 };
    Object.defineProperty(withDate, '__proto__', {
      value: new Date(5),
      enumerable: true,
      configurable: true,
      writable: true,
    });
    for (const v of [evil, withDate]) {
      const back = roundTrip(v) as Record<string, unknown>;
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
      expect(Object.prototype.hasOwnProperty.call(back, '__proto__')).toBe(true);
      expect((back as { polluted?: unknown }).polluted).toBeUndefined();
      expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toEqual(
        Object.getOwnPropertyDescriptor(v, '__proto__')?.value,
      );
      expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    }
  });

  it('tells undefined from null everywhere, and round-trips each special type', () => {
    const v = {
      u: undefined,
      n: null,
      arr: [undefined, null, 1],
      d: new Date(1_234),
      bad: new Date(NaN),
      m: new Map<unknown, unknown>([[{ k: 1 }, new Set([1n, -0])]]),
      b: Buffer.from('hi'),
      f: new Float64Array([1.5, NaN]),
      nums: [NaN, Infinity, -Infinity, -0, 0],
      esc: { '\u0000': 'tag-looking key', '\u0000u': 1 },
    };
    expect(same(roundTrip(v), v)).toBeNull();
    expect(same(roundTrip({ a: undefined }), {})).not.toBeNull(); // the comparison itself is strict
    expect(same(roundTrip(-0), 0)).not.toBeNull();
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip(null)).toBeNull();
    const back = roundTrip({ a: undefined }) as object;
    expect(Object.prototype.hasOwnProperty.call(back, 'a')).toBe(true);
  });

  it('decodes plain JSON data with one JSON.parse (no revive walk)', () => {
    expect(serialize({ a: [1, 'x', true, null], b: { c: 2 } }).revive).toBe(false);
    expect(serialize({ a: new Date(0) }).revive).toBe(true);
  });

  it('honours toJSON of user objects and drops functions like JSON', () => {
    const v = { x: { toJSON: () => 'custom' }, f: () => 1 };
    expect(roundTrip(v)).toEqual({ x: 'custom' });
  });
});

describe('CacheCodec', () => {
  const codec = new CacheCodec({ compression: { threshold: 100, level: 1 }, maxValueSize: 10_000 });

  it('stores the lifetime, load time and tags in the header', () => {
    const buf = codec.encodeValue('k', { a: 1 }, { ...meta, tags: ['board:1', 'x y'] });
    const e = codec.decode(buf);
    expect(e).toMatchObject({
      value: { a: 1 },
      freshUntil: meta.freshUntil,
      staleUntil: meta.staleUntil,
      delta: 42,
    });
    expect(e.tags).toEqual(['board:1', 'x y']);
    expect(e.format).toBe(EntryFormat.Value);
    expect(CacheCodec.decodeLifetime(buf.subarray(0, 20))).toEqual({
      freshUntil: meta.freshUntil,
      staleUntil: meta.staleUntil,
    });
  });

  it('compresses values at or above the threshold and decodes them', () => {
    const big = { text: 'abc'.repeat(500) };
    const buf = codec.encodeValue('k', big, meta);
    expect(buf[1] & 1).toBe(1);
    expect(buf.length).toBeLessThan(JSON.stringify(big).length);
    expect(codec.decode(buf).value).toEqual(big);
    const small = codec.encodeValue('k', { t: 'x' }, meta);
    expect(small[1] & 1).toBe(0);
  });

  it('refuses a value over maxValueSize with an error that names the key, the size and the option', () => {
    const err = (() => {
      try {
        codec.encodeValue('big-key', 'x'.repeat(10_001), meta);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CacheValueTooLargeError);
    expect(err).toMatchObject({ key: 'big-key', size: 10_003, maxValueSize: 10_000 });
    expect((err as Error).message).toMatch(/big-key.*10003 bytes.*maxValueSize \(10000 bytes\).*raise/);
  });

  it('refuses circular values with CacheSerializationError', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => codec.encodeValue('loop', a, meta)).toThrow(CacheSerializationError);
  });

  it('caps inflating at maxValueSize (a hostile compressed entry cannot expand without bound)', () => {
    const bomb = deflateRawSync(Buffer.alloc(5_000_000, 0x61));
    const buf = Buffer.alloc(HEADER_SIZE + bomb.length);
    buf[0] = 1;
    buf[1] = 1; // compressed
    bomb.copy(buf, HEADER_SIZE);
    expect(() => codec.decode(buf)).toThrow(/buffer|length|exceeds/i);
  });

  it('round-trips cached HTTP responses (status, JSON flag, ETag, UTF-8 body)', () => {
    const r = { body: '{"name":"Zoë ✓"}', json: true, status: 200, etag: '"abc"' };
    const e = codec.decode(codec.encodeResponse('route', r, meta));
    expect(e.format).toBe(EntryFormat.Response);
    expect(e.value).toEqual(r);
    const long = { ...r, body: JSON.stringify({ t: 'long text '.repeat(100) }) };
    expect(codec.decode(codec.encodeResponse('route', long, meta)).value).toEqual(long);
  });

  it('rejects bytes that are not an entry of this version', () => {
    expect(() => codec.decode(Buffer.from('plain string'))).toThrow(/not a cache entry/);
  });
});
