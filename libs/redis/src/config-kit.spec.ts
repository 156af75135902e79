import fc from 'fast-check';
import {
  closestName,
  describeValue,
  layerOptions,
  OptionChecker,
  quoteValue,
  type EnvOption,
} from './config-kit';

/** A lib's own config error, as every lib declares one. */
class DemoConfigError extends Error {
  override readonly name = 'DemoConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Invalid demo configuration: ${field} ${message}`);
  }
}

const check = new OptionChecker((field, message) => new DemoConfigError(field, message));

/** The DemoConfigError `fn` throws (fails the test when it throws nothing or something else). */
function failure(fn: () => unknown): DemoConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DemoConfigError);
    return err as DemoConfigError;
  }
  throw new Error('expected a DemoConfigError, nothing was thrown');
}

describe('OptionChecker: field checks throw the lib error naming the field', () => {
  it('fail() builds the lib error without throwing', () => {
    const err = check.fail('ttl', 'is wrong');
    expect(err).toBeInstanceOf(DemoConfigError);
    expect(err.message).toBe('Invalid demo configuration: ttl is wrong');
  });

  it('object() accepts plain objects and refuses everything else', () => {
    const o = { a: 1 };
    expect(check.object(o, 'options')).toBe(o);
    for (const bad of [null, undefined, [], 'x', 5, Buffer.from('x'), () => 1]) {
      const err = failure(() => check.object(bad, 'options', 'an object of lock options'));
      expect(err.field).toBe('options');
      expect(err.message).toMatch(/must be an object of lock options; got /);
    }
    expect(failure(() => check.object([], 'o')).message).toMatch(/got an array$/);
    expect(failure(() => check.object(null, 'o')).message).toMatch(/got null$/);
  });

  it('optionalObject() lets undefined through', () => {
    expect(check.optionalObject(undefined, 'retry')).toBeUndefined();
    expect(failure(() => check.optionalObject(3, 'retry')).field).toBe('retry');
  });

  it('int() checks type and range, names the range and unit, and passes undefined', () => {
    const range = { min: 10, max: 60_000, unit: 'ms' };
    expect(check.int(undefined, 'ttl', range)).toBeUndefined();
    expect(check.int(10, 'ttl', range)).toBe(10);
    expect(check.int(60_000, 'ttl', range)).toBe(60_000);
    expect(failure(() => check.int(9, 'ttl', range)).message).toMatch(
      /ttl must be an integer from 10 to 60000 ms; got 9$/,
    );
    expect(failure(() => check.int(60_001, 'ttl', range)).message).toMatch(/got 60001$/);
    expect(failure(() => check.int(1.5, 'ttl', range)).message).toMatch(
      /must be an integer from 10 to 60000 ms; got 1.5/,
    );
    expect(failure(() => check.int(NaN, 'ttl', range)).message).toMatch(/integer/);
    expect(failure(() => check.int('30', 'ttl', range)).message).toMatch(/got a string$/);
    expect(failure(() => check.int(5, 'retry.count', { min: 0, max: 3 })).field).toBe('retry.count');
  });

  it('number() accepts finite reals only', () => {
    expect(check.number(0.25, 'jitter', { min: 0, max: 1 })).toBe(0.25);
    expect(failure(() => check.number(Infinity, 'jitter', { min: 0, max: 1 })).message).toMatch(
      /must be a number/,
    );
    expect(failure(() => check.number(1.5, 'jitter', { min: 0, max: 1 })).message).toMatch(
      /from 0 to 1; got 1.5/,
    );
  });

  it('duration() is an integer of ms from 1 to one day unless told otherwise', () => {
    expect(check.duration(1, 'ttl')).toBe(1);
    expect(check.duration(86_400_000, 'ttl')).toBe(86_400_000);
    expect(failure(() => check.duration(0, 'ttl')).message).toMatch(/from 1 to 86400000 ms/);
    expect(failure(() => check.duration(86_400_001, 'ttl')).field).toBe('ttl');
    expect(failure(() => check.duration(50, 'wait', { min: 100 })).message).toMatch(
      /from 100 to 86400000 ms/,
    );
    expect(check.duration(undefined, 'ttl')).toBeUndefined();
  });

  it('bool() accepts true/false only', () => {
    expect(check.bool(false, 'enabled')).toBe(false);
    expect(check.bool(undefined, 'enabled')).toBeUndefined();
    expect(failure(() => check.bool('true', 'enabled')).message).toMatch(
      /must be true or false; got a string/,
    );
    expect(failure(() => check.bool(1, 'enabled')).message).toMatch(/got 1/);
  });

  it('string() checks type, emptiness and a pattern described in words', () => {
    expect(check.string('orders', 'name', { pattern: /^[a-z]+$/ })).toBe('orders');
    expect(failure(() => check.string(5, 'name')).message).toMatch(/must be a string; got 5/);
    expect(failure(() => check.string('', 'name', { nonEmpty: true })).message).toMatch(/must not be empty/);
    const err = failure(() =>
      check.string('Or ders', 'name', { pattern: /^[a-z]+$/, hint: 'lower-case letters' }),
    );
    expect(err.message).toMatch(/name must be lower-case letters$/);
    expect(failure(() => check.string('X', 'name', { pattern: /^[a-z]+$/ })).message).toMatch(/matching/);
  });

  it('oneOf() lists the choices and suggests the closest without echoing the value', () => {
    expect(check.oneOf('fixed', 'algorithm', ['fixed', 'sliding'] as const)).toBe('fixed');
    const err = failure(() => check.oneOf('slidng', 'algorithm', ['fixed', 'sliding']));
    expect(err.message).toMatch(
      /must be one of "fixed", "sliding"; got another string \(did you mean "sliding"\?\)/,
    );
    expect(err.message).not.toContain('slidng');
    expect(failure(() => check.oneOf(3, 'algorithm', ['fixed'])).message).toMatch(/got 3$/);
    expect(failure(() => check.oneOf('zzzzzzzz', 'algorithm', ['fixed'])).message).not.toMatch(
      /did you mean/,
    );
  });

  it('fn() and array() check the shape; array() names each item by index', () => {
    const f = () => 1;
    expect(check.fn(f, 'keyFn')).toBe(f);
    expect(failure(() => check.fn('x', 'keyFn', 'a function (req) => string')).message).toMatch(
      /must be a function \(req\) => string; got a string/,
    );
    expect(check.array([1, 2], 'b', (v, field) => check.int(v, field, { min: 0, max: 9 }))).toEqual([1, 2]);
    expect(
      failure(() => check.array([1, 20], 'b', (v, field) => check.int(v, field, { min: 0, max: 9 }))).field,
    ).toBe('b[1]');
    expect(failure(() => check.array('x', 'b', (v) => v)).message).toMatch(/must be an array/);
    expect(check.array(undefined, 'b', (v) => v)).toBeUndefined();
  });
});

describe('OptionChecker.keys: unknown keys with one did-you-mean', () => {
  const known = ['ttl', 'wait', 'retryCount', 'driftFactor'];

  it('passes known keys and names an unknown one with the closest known key', () => {
    expect(() => check.keys({ ttl: 1, wait: 2 }, known, '')).not.toThrow();
    const err = failure(() => check.keys({ ttl: 1, retryCont: 2 }, known, ''));
    expect(err.field).toBe('retryCont');
    expect(err.message).toMatch(/is an unknown option; did you mean retryCount\?$/);
    expect(failure(() => check.keys({ TTL: 1 }, known, 'lock.')).message).toMatch(
      /lock.TTL is an unknown option; did you mean ttl\?/,
    );
  });

  it('says where the options are listed when nothing is close', () => {
    const err = failure(() => check.keys({ zzzzzz: 1 }, known, 'lock.', 'the @redwing/lock README'));
    expect(err.field).toBe('lock.zzzzzz');
    expect(err.message).toMatch(/remove it \(see the options in the @redwing\/lock README\)/);
  });

  it('names keys that are not identifiers readably, without control characters', () => {
    expect(failure(() => check.keys({ 'a b\n': 1 }, known, '')).field).toBe('["a b?"]');
    expect(failure(() => check.keys({ '': 1 }, known, 'retry.')).field).toBe('retry[""]');
  });
});

describe('closestName: the did-you-mean threshold', () => {
  it.each([
    // up to 4 characters: 1 edit
    ['tll', ['ttl'], 'ttl'],
    ['tx', ['ttl'], undefined],
    // 5–8 characters: 2 edits
    ['wiatt', ['wait'], 'wait'],
    ['prefx', ['prefix'], 'prefix'],
    ['pxxfxx', ['prefix'], undefined],
    // longer: 3 edits
    ['retryCnt', ['retryCount'], 'retryCount'],
    ['rtryCnnt', ['retryCount'], undefined],
    ['drftFacto', ['driftFactor'], 'driftFactor'],
    // case-insensitive equality always matches, whatever the length
    ['KEYPREFIX', ['keyPrefix'], 'keyPrefix'],
    ['zzzzzzzzzzzz', ['keyPrefix', 'ttl'], undefined],
  ])('%s among %j -> %s', (name, candidates, expected) => {
    expect(closestName(name, candidates)).toBe(expected);
  });

  it('picks the closest of several and gives up on very long names', () => {
    expect(closestName('tim', ['timeout', 'ttl', 'time'])).toBe('time');
    expect(closestName('a'.repeat(65), ['a'.repeat(64)])).toBeUndefined();
  });
});

describe('OptionChecker.env: variables to nested options', () => {
  const table: EnvOption[] = [
    { name: 'LOCK_TTL', field: 'ttl', kind: 'int', range: { min: 10, max: 60_000, unit: 'ms' } },
    { name: 'LOCK_DRIFT', field: 'retry.drift', kind: 'number' },
    { name: 'LOCK_ENABLED', field: 'enabled', kind: 'bool' },
    { name: 'LOCK_NAME', field: 'name', kind: 'string' },
    { name: 'LOCK_NODES', field: 'nodes', kind: 'list' },
    { name: 'LOCK_PORT', field: 'retry.port', kind: 'int' },
    { name: 'LOCK_SHOUT', field: 'shout', kind: 'string', parse: (text) => text.toUpperCase() },
  ];

  it('parses each kind and places it at its dotted field', () => {
    expect(
      check.env(
        {
          LOCK_TTL: ' 500 ',
          LOCK_DRIFT: '0.01',
          LOCK_ENABLED: 'on',
          LOCK_NAME: ' orders ',
          LOCK_NODES: 'a:1, b:2,,',
          LOCK_PORT: '+7',
          LOCK_SHOUT: 'hi',
          OTHER: 'ignored',
        },
        table,
      ),
    ).toEqual({
      ttl: 500,
      retry: { drift: 0.01, port: 7 },
      enabled: true,
      name: 'orders',
      nodes: ['a:1', 'b:2'],
      shout: 'HI',
    });
  });

  it('skips unset and blank variables', () => {
    expect(check.env({ LOCK_TTL: '', LOCK_NAME: '   ' }, table)).toEqual({});
    expect(check.env({}, table)).toEqual({});
  });

  it.each([
    ['true', true],
    ['YES', true],
    ['1', true],
    ['On', true],
    ['false', false],
    ['no', false],
    ['0', false],
    ['OFF', false],
  ])('reads boolean %s', (text, expected) => {
    expect(check.env({ LOCK_ENABLED: text }, table).enabled).toBe(expected);
  });

  it.each([
    ['LOCK_TTL', 'abc', /must be an integer from 10 to 60000 ms$/],
    ['LOCK_TTL', '1.5', /must be an integer/],
    ['LOCK_TTL', '1e3', /must be an integer/],
    ['LOCK_TTL', '5', /must be an integer from 10 to 60000 ms$/],
    ['LOCK_TTL', '70000', /from 10 to 60000/],
    ['LOCK_DRIFT', '0x10', /must be a number$/],
    ['LOCK_PORT', '7.5', /must be an integer$/],
    ['LOCK_ENABLED', 'maybe', /true or false \(written true\/false, 1\/0 or yes\/no; on\/off also work\)/],
  ])('%s=%s is refused naming the variable, not echoing the value', (name, text, message) => {
    const err = failure(() => check.env({ [name]: text }, table));
    expect(err.field).toBe(name);
    expect(err.message).toContain(name);
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/got /); // the value is never shown
  });

  it('refuses a variable that is not a string (an env object built by hand)', () => {
    const err = failure(() => check.env({ LOCK_TTL: 500 }, table));
    expect(err.field).toBe('LOCK_TTL');
    expect(err.message).toMatch(/must be a string; got 500/);
  });
});

describe('layerOptions: later layers win key by key', () => {
  const defaults = { ttl: 30_000, retry: { count: 3, delay: 200 }, nodes: ['a'], name: 'lock' };

  it('merges plain objects deeply and replaces everything else whole', () => {
    const fromEnv = { ttl: 10_000, retry: { count: 5 }, nodes: ['b', 'c'] };
    const explicit = { retry: { delay: 50 }, name: undefined, nodes: ['d'] };
    expect(layerOptions(defaults, fromEnv, explicit)).toEqual({
      ttl: 10_000,
      retry: { count: 5, delay: 50 },
      nodes: ['d'],
      name: 'lock', // undefined never overrides
    });
  });

  it('explicit beats environment beats defaults, whatever the order of keys', () => {
    expect(layerOptions({ a: 1 }, { a: 2 }, { a: 3 })).toEqual({ a: 3 });
    expect(layerOptions({ a: 1 }, { a: 2 }, undefined)).toEqual({ a: 2 });
    expect(layerOptions({ a: 1 }, undefined, {})).toEqual({ a: 1 });
  });

  it('copies instead of mutating its layers, and keeps class instances and functions as they are', () => {
    const buffer = Buffer.from('pem');
    const fn = () => 'k';
    const layer = { tls: { ca: buffer }, keyFn: fn, retry: { count: 1 } };
    const out = layerOptions<typeof layer>(defaults, layer);
    expect(out.tls.ca).toBe(buffer);
    expect(out.keyFn).toBe(fn);
    out.retry.count = 99;
    expect(layer.retry.count).toBe(1);
    expect(defaults.retry.count).toBe(3);
  });

  it('ignores __proto__, constructor and prototype keys (no prototype pollution)', () => {
    const hostile = JSON.parse(
      '{"__proto__": {"polluted": true}, "constructor": {"x": 1}, "nested": {"__proto__": {"p": 1}}}',
    );
    const out = layerOptions<Record<string, unknown>>({ a: 1 }, hostile);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(out, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(out.constructor).toBe(Object);
    expect((out.nested as Record<string, unknown>).p).toBeUndefined();
    expect(out.a).toBe(1);
  });
});

describe('describeValue and quoteValue', () => {
  it.each([
    [null, 'null'],
    [undefined, 'undefined'],
    [5, '5'],
    [true, 'true'],
    ['secret', 'a string'],
    [[1], 'an array'],
    [{ a: 1 }, 'an object'],
    [() => 1, 'a function'],
    [Symbol('s'), 'a symbol'],
  ])('describeValue(%p) is %s', (value, text) => {
    expect(describeValue(value)).toBe(text);
  });

  it('quoteValue replaces control characters and truncates to 80 characters', () => {
    expect(quoteValue('a\nb\u2028c')).toBe('"a?b?c"');
    const long = quoteValue('x'.repeat(200));
    expect(long).toBe(JSON.stringify(`${'x'.repeat(77)}...`));
  });
});

describe('no message contains the rejected string (property)', () => {
  // A marker around arbitrary text, so the string cannot be a word of the message template by chance.
  const rejected = fc.string({ minLength: 1, maxLength: 40 }).map((s) => `Zq${s}9Q`);
  const table: EnvOption[] = [
    { name: 'X_INT', field: 'i', kind: 'int', range: { min: 0, max: 10 } },
    { name: 'X_NUM', field: 'n', kind: 'number' },
    { name: 'X_BOOL', field: 'b', kind: 'bool' },
  ];
  const checks: Array<(value: string) => unknown> = [
    (v) => check.int(v, 'f', { min: 0, max: 1 }),
    (v) => check.number(v, 'f', { min: 0, max: 1 }),
    (v) => check.duration(v, 'f'),
    (v) => check.bool(v, 'f'),
    (v) => check.object(v, 'f'),
    (v) => check.fn(v, 'f'),
    (v) => check.array(v, 'f', (x) => x),
    (v) => check.string(v, 'f', { pattern: /^\d+$/ }),
    (v) => check.string(v, 'f', { pattern: /^\d+$/, hint: 'digits' }),
    (v) => check.oneOf(v, 'f', ['a', 'b']),
    (v) => check.env({ X_INT: v }, table),
    (v) => check.env({ X_NUM: v }, table),
    (v) => check.env({ X_BOOL: v }, table),
  ];

  it('holds for every checker that refuses a string', () => {
    fc.assert(
      fc.property(rejected, fc.integer({ min: 0, max: checks.length - 1 }), (value, i) => {
        const err = failure(() => checks[i](value));
        return !err.message.includes(value) && !err.field.includes(value);
      }),
      { numRuns: 500 },
    );
  });
});
