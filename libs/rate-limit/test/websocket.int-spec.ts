// The WebSocket recipe of docs/rate-limit.md, on a plain Node HTTP server's `upgrade` event (what socket.io
// and ws sit on): handshakes limited per client address with RateLimitService.identify(), messages per socket.
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { RateLimitLimit, RateLimitService } from '@redwing/rate-limit';
import { RedisServer, stopAll } from '../../../test/harness';
import { bootService, type Booted } from './helpers';

afterAll(() => stopAll());

const WS_HANDSHAKES: RateLimitLimit = {
  name: 'ws-handshake',
  points: 5,
  duration: 60_000,
  algorithm: 'sliding-window',
};
const WS_MESSAGES: RateLimitLimit = {
  name: 'ws-message',
  points: 20,
  duration: 1_000,
  algorithm: 'token-bucket',
};

/** The handshake gate of the recipe: refuse the upgrade with 429 + Retry-After before any socket exists. */
function handshakeGate(rateLimit: RateLimitService, onOpen: (id: string) => void) {
  return async (req: http.IncomingMessage, socket: Socket) => {
    const decision = await rateLimit.consume(rateLimit.identify(req), { limits: WS_HANDSHAKES });
    if (!decision.allowed) {
      const status = decision.unavailable ? '503 Service Unavailable' : '429 Too Many Requests';
      socket.end(
        `HTTP/1.1 ${status}\r\nRetry-After: ${Math.ceil(decision.retryAfter / 1_000)}\r\nConnection: close\r\n\r\n`,
      );
      return;
    }
    const id = randomBytes(8).toString('hex');
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    onOpen(id);
    socket.end();
  };
}

/** Upgrade request from one client; resolves to the status line's code and Retry-After. */
function upgrade(port: number, forwardedFor?: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('WebSocket handshakes and messages through RateLimitService', () => {
  let booted: Booted;
  let server: http.Server;
  let port: number;
  const opened: string[] = [];

  beforeAll(async () => {
    const redis = await RedisServer.start();
    booted = await bootService({ url: redis.url() }, { trustProxy: 1 });
    server = http.createServer((_req, res) => res.writeHead(426).end());
    server.on(
      'upgrade',
      (req, socket) => void handshakeGate(booted.service, (id) => opened.push(id))(req, socket as Socket),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await booted?.module.close();
  });

  it('admits 5 handshakes a minute per client address (behind one proxy), then answers 429 with Retry-After', async () => {
    const alice = [];
    for (let i = 0; i < 7; i++) alice.push(await upgrade(port, `10.1.1.${i}, 198.51.100.1`));
    expect(alice.map((r) => r.status)).toEqual([101, 101, 101, 101, 101, 429, 429]);
    expect(Number(alice[5].retryAfter)).toBeGreaterThan(55);
    // Another client (the address the proxy appended differs) is counted on its own.
    expect((await upgrade(port, '198.51.100.2')).status).toBe(101);
    expect(opened).toHaveLength(6);
  });

  it('limits messages per socket: a flood from one socket is throttled, others are unaffected', async () => {
    const onMessage = async (socketId: string) =>
      (await booted.service.consume(`socket:${socketId}`, { limits: WS_MESSAGES })).allowed;
    const started = Date.now();
    const flood = await Promise.all(Array.from({ length: 100 }, () => onMessage('flooder')));
    const elapsed = Date.now() - started;
    const calm = await Promise.all(Array.from({ length: 5 }, () => onMessage('calm')));
    // A burst of 20, plus what refilled (20 per second) while the flood was being counted.
    const admitted = flood.filter(Boolean).length;
    expect(admitted).toBeGreaterThanOrEqual(20);
    expect(admitted).toBeLessThanOrEqual(20 + Math.ceil((elapsed * 20) / 1_000));
    expect(admitted).toBeLessThan(100);
    expect(calm).toEqual([true, true, true, true, true]);
  });
});
