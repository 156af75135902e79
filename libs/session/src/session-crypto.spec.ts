import { readCookie } from './session-cookie';
import { SessionCrypto } from './session-crypto';

const ring = (...keys: string[]) => new SessionCrypto(keys.map((k) => Buffer.from(k.repeat(32))));

describe('SessionCrypto', () => {
  it('makes 256-bit ids with the user tag, and one-way refs', () => {
    const c = ring('a');
    const ids = new Set(Array.from({ length: 1_000 }, () => c.newId('alice')));
    expect(ids.size).toBe(1_000);
    for (const id of ids) {
      expect(c.isWellFormed(id)).toBe(true);
      expect(c.tagOf(id)).toBe(c.userTag('alice'));
    }
    const id = [...ids][0];
    expect(c.ref(id)).toHaveLength(22);
    expect(c.ref(id)).not.toContain(id.slice(7, 20));
  });

  it('binds ciphertext to the id and field, and decrypts with any key of the ring', () => {
    const old = ring('a');
    const rotated = ring('b', 'a');
    const retired = ring('b');
    const id = old.newId(null);
    const blob = old.encrypt(id, 'f:x', Buffer.from('hello'));
    expect(rotated.decrypt(id, 'f:x', blob)).toEqual(Buffer.from('hello'));
    expect(retired.decrypt(id, 'f:x', blob)).toBe('unknown_key');
    expect(old.decrypt(old.newId(null), 'f:x', blob)).toBe('tamper');
    expect(old.decrypt(id, 'f:y', blob)).toBe('tamper');
    expect(old.decrypt(id, 'f:x', 'AAAA')).toBe('tamper');
  });

  it('verifies CSRF tokens in constant time against the whole ring', () => {
    const c = ring('a');
    const id = c.newId('u');
    expect(c.verifyCsrf(id, c.csrfToken(id))).toBe(true);
    expect(c.verifyCsrf(c.newId('u'), c.csrfToken(id))).toBe(false);
    expect(c.verifyCsrf(id, undefined)).toBe(false);
    expect(ring('b', 'a').verifyCsrf(id, c.csrfToken(id))).toBe(true);
  });
});

describe('readCookie', () => {
  it('finds one cookie by exact name', () => {
    expect(readCookie('a=1; rwsid=abc; b=2', 'rwsid')).toBe('abc');
    expect(readCookie('xrwsid=abc; rwsid="q"', 'rwsid')).toBe('q');
    expect(readCookie('__Host-rwsid=h', 'rwsid')).toBeUndefined();
    expect(readCookie(undefined, 'rwsid')).toBeUndefined();
  });
});
