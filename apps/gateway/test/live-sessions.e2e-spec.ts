// Live sockets authenticated by session (cookie or `auth.token` = session id) on two real gateways: "log out
// everywhere" on one instance closes that user's sockets on both within 1 s (others stay), and the ended
// session's token is refused at the next handshake.
import type { Socket } from 'socket.io-client';
import { stopAll, waitFor } from '../../../test/harness';
import { liveClient, opened } from './live-client';
import {
  gatewayEnv,
  NO_TELEMETRY,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  type TwoGateways,
} from './support';

const sockets: Socket[] = [];
const client = (base: string, auth: { cookie?: string; token?: string }): Socket =>
  liveClient(base, sockets, auth);

async function login(
  base: string,
  username: string,
  password: string,
): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { csrfToken: string };
  return { cookie: res.headers.get('set-cookie')!.split(';')[0], csrf: body.csrfToken };
}

describe('live sockets and sessions', () => {
  let two: TwoGateways;

  beforeAll(async () => {
    two = await startTwoGateways((adapter, url) =>
      serveGateway(
        adapter,
        gatewayEnv(url, {
          ...NO_TELEMETRY,
          AUTH_DEMO_USERS: 'alice:wonderland,bob:builder',
          SESSION_KEYS: 'live-e2e-key-0123456789abcdefghijklmnopqrstuvwxyz',
        }),
      ),
    );
  }, 60_000);

  afterAll(async () => {
    for (const s of sockets.splice(0)) s.disconnect();
    await stopTwoGateways(two ?? {});
    delete process.env.AUTH_DEMO_USERS;
    delete process.env.SESSION_KEYS;
    await stopAll();
  });

  it('log out everywhere on B closes the user’s sockets on A and B within 1 s; the ended session is refused', async () => {
    const first = await login(two.a.base, 'alice', 'wonderland');
    const second = await login(two.b.base, 'alice', 'wonderland');
    const bob = await login(two.a.base, 'bob', 'builder');
    const sessionId = decodeURIComponent(second.cookie.slice(second.cookie.indexOf('=') + 1));

    const aliceOnA = client(two.a.base, { cookie: first.cookie });
    const aliceOnB = client(two.b.base, { token: sessionId });
    const bobOnA = client(two.a.base, { cookie: bob.cookie });
    await Promise.all([opened(aliceOnA), opened(aliceOnB), opened(bobOnA)]);
    for (const [socket, channel] of [
      [aliceOnA, 'user:alice'],
      [aliceOnB, 'user:alice'],
      [bobOnA, 'user:bob'],
    ] as const) {
      expect(await socket.timeout(5_000).emitWithAck('subscribe', { channel })).toEqual({ ok: true });
    }
    expect(await bobOnA.timeout(5_000).emitWithAck('subscribe', { channel: 'user:alice' })).toEqual({
      ok: false,
      error: 'forbidden',
    });
    const revoked: string[] = [];
    aliceOnA.on('revoked', () => revoked.push('a'));
    aliceOnB.on('revoked', () => revoked.push('b'));

    const started = Date.now();
    const res = await fetch(`${two.b.base}/auth/logout-all`, {
      method: 'POST',
      headers: { cookie: first.cookie, 'x-csrf-token': first.csrf },
    });
    expect(res.status).toBe(204);
    await waitFor('alice’s sockets closed', 1_000, () => !aliceOnA.connected && !aliceOnB.connected);
    expect(Date.now() - started).toBeLessThanOrEqual(1_000);
    expect(revoked.sort()).toEqual(['a', 'b']);
    expect(bobOnA.connected).toBe(true);

    // The ended session as a token: refused at the handshake. As a cookie: only anonymous.
    await expect(opened(client(two.a.base, { token: sessionId }))).rejects.toThrow('unauthorized');
    const stale = client(two.a.base, { cookie: first.cookie });
    await opened(stale);
    expect(await stale.timeout(5_000).emitWithAck('subscribe', { channel: 'user:alice' })).toEqual({
      ok: false,
      error: 'forbidden',
    });
  }, 30_000);
});
