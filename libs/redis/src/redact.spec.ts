import fc from 'fast-check';
import { redactText, redactUrl } from './redact';

/** Passwords from an alphabet that never occurs in our fixed text, with the characters that break URL parsing. */
const password = fc.string({
  unit: fc.constantFrom(...'QXZqxz79!@:/%#?$&+= '.split('')),
  minLength: 8,
  maxLength: 24,
});
const word = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnop0123456'.split('')),
  minLength: 1,
  maxLength: 12,
});

describe('redactUrl', () => {
  it.each([
    ['redis://user:secret@h:6379/0', 'redis://user:***@h:6379/0'],
    ['redis://:pw@h', 'redis://:***@h'],
    ['rediss://app:s%40cret@10.0.0.5:6380/2', 'rediss://app:***@10.0.0.5:6380/2'],
    ['redis://user:p@ss/w#rd@h:1', 'redis://user:***@h:1'],
    ['redis://h:6379', 'redis://h:6379'],
    ['redis://user@h:6379', 'redis://user@h:6379'],
    ['', ''],
    ['user:secret@host', 'user:***@host'],
    ['secret@host', '***@host'],
    ['not a url at all', 'not a url at all'],
  ])('%s -> %s', (input, output) => {
    expect(redactUrl(input)).toBe(output);
  });

  it('never throws, even for non-strings', () => {
    expect(redactUrl(undefined as unknown as string)).toBe('[not a string]');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => typeof redactUrl(s) === 'string'),
      { numRuns: 10_000 },
    );
  });

  it('never contains the password of a URL with credentials (raw or encoded, any scheme or none)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('redis://', 'rediss://', 'http://', 'redis+sentinel://', ''),
        fc.option(word, { nil: '' }),
        password,
        fc.boolean(),
        word,
        fc.option(fc.integer({ min: 0, max: 70_000 }), { nil: undefined }),
        fc.constantFrom('', '/', '/3', '/a/b'),
        (scheme, user, pw, encode, host, port, path) => {
          const secret = encode ? encodeURIComponent(pw) : pw;
          // `a` + `://x@h` is a URL whose user name is `x`: a different input from the one meant here.
          fc.pre(scheme !== '' || !secret.startsWith('//'));
          const url = `${scheme}${user}:${secret}@${host}${port === undefined ? '' : `:${port}`}${path}`;
          const out = redactUrl(url);
          // Plain checks in the hot loop: expect() costs more than the code under test.
          if (out.includes(pw) || out.includes(secret) || !out.includes(host)) {
            throw new Error(`${JSON.stringify(url)} -> ${JSON.stringify(out)}`);
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });
});

describe('redactText', () => {
  it('replaces every occurrence of each secret and its URL-encoded form', () => {
    const text = 'auth p@ss/1 failed; retry with p@ss/1, url redis://u:p%40ss%2F1@h';
    expect(redactText(text, ['p@ss/1'])).toBe('auth *** failed; retry with ***, url redis://u:***@h');
  });

  it('ignores empty secrets and strips passwords from redis URLs even when the secret is unknown', () => {
    expect(redactText('connect rediss://app:hunter2@10.0.0.5:6380/2 failed', ['', 'other'])).toBe(
      'connect rediss://app:***@10.0.0.5:6380/2 failed',
    );
    expect(redactText('nothing to hide', [])).toBe('nothing to hide');
  });

  it('replaces a longer secret whole when a shorter one is inside it', () => {
    expect(redactText('xx abcdefgh yy', ['cdef', 'abcdefgh'])).toBe('xx *** yy');
  });

  it('never throws on odd input', () => {
    expect(redactText('a\uD800b', ['\uD800'])).toBe('a***b');
    expect(redactText(undefined as unknown as string, ['x'])).toBe('[not a string]');
    expect(redactText('abc', undefined as unknown as string[])).toBe('abc');
  });

  it('scrubs every secret from any text (property)', () => {
    const secrets = fc.uniqueArray(password, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        secrets,
        fc.array(fc.tuple(fc.string(), fc.nat(), fc.constantFrom('raw', 'encoded', 'url')), { maxLength: 8 }),
        fc.string(),
        (list, pieces, tail) => {
          const text =
            pieces
              .map(([filler, i, form]) => {
                const s = list[i % list.length];
                if (form === 'encoded') return filler + encodeURIComponent(s);
                if (form === 'url') return `${filler} redis://u:${encodeURIComponent(s)}@h:6379/1 `;
                return filler + s;
              })
              .join('') + tail;
          const out = redactText(text, list);
          for (const s of list) {
            if (out.includes(s) || out.includes(encodeURIComponent(s))) {
              throw new Error(`${JSON.stringify(s)} left in ${JSON.stringify(out)}`);
            }
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });
});
