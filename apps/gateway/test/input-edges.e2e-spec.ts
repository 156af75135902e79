// Input edges of the real gateway on both HTTP adapters (issue 13, item 5):
// - a query parameter given twice (`?names=a&names=b`) arrives as an array: routes accept repeats where a
//   list makes sense (`names`) and answer 400 where one value is expected — never 500;
// - `POST /boards/:id/cards` and `POST /limited/login` are JSON routes: anything but `application/json` is 415
//   (a form post skips the CORS preflight, so any web page could otherwise add cards);
// - a 10 MB body gets its 413 JSON answer every time (10 of 10), also while the client is still writing.
import * as net from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { request } from '../../../libs/cache/test/helpers';
import { RedisServer, stopAll } from '../../../test/harness';
import type { HttpAdapterName } from '../src/config/gateway-env.schema';
import { gatewayEnv, NO_TELEMETRY, serveGateway, waitForReady } from './support';

afterAll(() => stopAll());

/**
 * POSTs `size` bytes of body on a raw socket the way a simple client does — headers, then the whole body,
 * then read the answer — and reports what it saw: the status line and JSON body, or the socket error that
 * cut it short (EPIPE / ECONNRESET: the server closed while the client was still writing).
 */
function postLarge(
  port: number,
  path: string,
  size: number,
): Promise<{ status: number; body: any } | { error: string; received: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let settled = false;
    const settle = (outcome: { status: number; body: any } | { error: string; received: string }) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(20_000, () => settle({ error: 'no answer within 20 s', received }));
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => settle({ error: err.code ?? err.message, received }));
    socket.on('close', () => {
      const [head, text = ''] = received.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      settle(status ? { status, body } : { error: 'closed without an answer', received });
    });
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${size}\r\nConnection: close\r\n\r\n`,
    );
    socket.end(Buffer.alloc(size, 'a'));
  });
}

describe.each<HttpAdapterName>(['fastify', 'express'])('input edges on %s', (adapter) => {
  let redis: RedisServer;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    ({ app, base } = await serveGateway(
      adapter,
      gatewayEnv(redis.url(), {
        ...NO_TELEMETRY,
        UPSTREAM_DELAY_MS: '0',
        METRICS_SERIES_FLUSH_INTERVAL: '60000',
        METRICS_SERIES_ENABLED: undefined,
      }),
    ));
    await waitForReady(base);
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  const get = (path: string) => request(base + path);

  it('GET /stats/series accepts a repeated names= (same answer as the comma list), never 500', async () => {
    const repeated = await get('/stats/series?names=requests&names=errors&minutes=5');
    expect(repeated.status).toBe(200);
    expect(Object.keys(repeated.body.series).sort()).toEqual(['errors', 'requests']);
    const list = await get('/stats/series?names=requests,errors&minutes=5');
    expect(Object.keys(list.body.series).sort()).toEqual(Object.keys(repeated.body.series).sort());
    const unknown = await get('/stats/series?names=requests&names=nope');
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toContain('unknown series: nope');
  });

  it.each(['minutes=5&minutes=6', 'agg=sum&agg=avg', 'from=1&from=2', 'to=1&to=2'])(
    'GET /stats/series?%s (a single-valued parameter given twice) is 400, not 500',
    async (query) => {
      const res = await get(`/stats/series?${query}`);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, message: expect.stringContaining('once') });
    },
  );

  it('GET /jobs/dlq?limit=5&limit=6 is 400 (it used to fall back to 50 silently)', async () => {
    const res = await get('/jobs/dlq?limit=5&limit=6');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, message: expect.stringContaining('once') });
    expect((await get('/jobs/dlq?limit=5')).status).toBe(200);
  });

  it.each(['offset=0&offset=1', 'limit=5&limit=6'])(
    'GET /boards?%s (a single-valued parameter given twice) is 400, not 500',
    async (query) => {
      const res = await get(`/boards?${query}`);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ statusCode: 400, message: expect.stringContaining('once') });
    },
  );

  it('POST /boards/:id/cards accepts application/json (with a charset) and refuses any other type with 415', async () => {
    const post = (contentType: string | undefined, body: string) =>
      request(`${base}/boards/7/cards`, {
        method: 'POST',
        headers: contentType ? { 'content-type': contentType } : {},
        body,
      });
    const ok = await post('application/json; charset=utf-8', JSON.stringify({ title: 'json card' }));
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ boardId: 7, card: { title: 'json card' } });

    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'title=form+card'],
      ['text/plain', '{"title":"text card"}'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\nContent-Disposition: form-data; name="title"\r\n\r\nm\r\n--x--\r\n',
      ],
      ['application/vnd.api+json', '{"title":"vnd card"}'],
      [undefined, '{"title":"no type"}'],
    ] as const) {
      const res = await post(type, body);
      expect({ type, status: res.status }).toEqual({ type, status: 415 });
      expect(res.body).toMatchObject({ statusCode: 415 });
    }
    const board = await get('/boards/7');
    expect(board.status).toBe(200);
  });

  it('POST /limited/login is a JSON route too: a form post is 415 (no token), JSON is served', async () => {
    const post = (type: string, body: string) =>
      request(`${base}/limited/login`, { method: 'POST', headers: { 'content-type': type }, body });
    for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
      const res = await post(type, 'user=alice&password=demo');
      expect({ type, status: res.status, token: res.body?.token }).toEqual({
        type,
        status: 415,
        token: undefined,
      });
    }
    const json = await post('application/json', JSON.stringify({ user: 'alice', password: 'demo' }));
    expect(json.status).toBe(200);
    expect(json.body.token).toEqual(expect.any(String));
  });

  it('answers a 10 MB body with its 413 JSON in 10 of 10 tries, while the client is still writing', async () => {
    const port = Number(new URL(base).port);
    const outcomes: unknown[] = [];
    for (let i = 0; i < 10; i++) outcomes.push(await postLarge(port, '/boards/7/cards', 10 * 1024 * 1024));
    const answered = outcomes.filter(
      (o) => (o as { status?: number }).status === 413 && (o as { body: any }).body?.statusCode === 413,
    );
    expect({ answered: answered.length, outcomes: outcomes.filter((o) => !answered.includes(o)) }).toEqual({
      answered: 10,
      outcomes: [],
    });
    // The gateway still serves afterwards.
    expect((await get('/health')).status).toBe(200);
  }, 120_000);
});
