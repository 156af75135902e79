import type { IncomingMessage } from 'node:http';
import { isPlainLoopback, SessionCookie } from './session-cookie';
import type { ResolvedSessionConfig } from './session.config';

type CookieConfig = ResolvedSessionConfig['cookie'];

const base: CookieConfig = { name: 'rwsid', secure: 'auto', sameSite: 'lax', path: '/' };

/** A request as Node gives it: socket address, TLS flag, headers. */
function request(remoteAddress: string, headers: Record<string, string>, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress, encrypted }, headers } as unknown as IncomingMessage;
}

const loopback = request('127.0.0.1', { host: '127.0.0.1:3000' });
const ID = `abcdef.${'x'.repeat(43)}`;

describe('SessionCookie', () => {
  it('uses the __Host- prefix only when the cookie is Secure with Path=/ and no Domain', () => {
    const remote = request('203.0.113.9', { host: 'app.example.com' });
    expect(new SessionCookie(base).serialize(remote, ID, 60_000)).toBe(
      `__Host-rwsid=${ID}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure`,
    );
    expect(new SessionCookie({ ...base, domain: 'example.com' }).serialize(remote, ID, 60_000)).toBe(
      `rwsid=${ID}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Domain=example.com; Secure`,
    );
    expect(new SessionCookie({ ...base, path: '/app' }).serialize(remote, ID, 60_000)).toMatch(
      /^rwsid=.*; Path=\/app; .*; Secure$/,
    );
  });

  it("'auto' drops Secure (and the prefix) only on plain-HTTP loopback; true and false are absolute", () => {
    const auto = new SessionCookie(base);
    expect(auto.serialize(loopback, ID, 1_000)).toBe(
      `rwsid=${ID}; Path=/; Max-Age=1; HttpOnly; SameSite=Lax`,
    );
    expect(auto.plainSeen).toBe(true);
    for (const req of [
      request('127.0.0.1', { host: '127.0.0.1:3000' }, true),
      request('127.0.0.1', { host: '127.0.0.1:3000', 'x-forwarded-proto': 'http' }),
      request('127.0.0.1', { host: 'app.example.com' }),
      request('10.0.0.5', { host: 'localhost:3000' }),
    ]) {
      expect(isPlainLoopback(req)).toBe(false);
      expect(auto.serialize(req, ID, 1_000)).toMatch(/^__Host-rwsid=.*; Secure$/);
    }
    expect(new SessionCookie({ ...base, secure: true }).serialize(loopback, ID, 1_000)).toMatch(
      /^__Host-rwsid=.*; Secure$/,
    );
    expect(new SessionCookie({ ...base, secure: false }).serialize(loopback, ID, 1_000)).not.toMatch(
      /Secure|__Host-/,
    );
  });

  it('reads the id only under the name its transport allows; clears with an expired cookie', () => {
    const auto = new SessionCookie({ ...base, sameSite: 'strict' });
    const withBoth = (headers: Record<string, string>) => ({
      ...headers,
      cookie: `rwsid=plain; __Host-rwsid=${ID}`,
    });
    expect(auto.read(request('127.0.0.1', withBoth({ host: 'localhost' })))).toBe('plain');
    expect(auto.read(request('203.0.113.9', withBoth({ host: 'app.example.com' })))).toBe(ID);
    expect(auto.clear(loopback)).toBe(
      'rwsid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict',
    );
  });
});
