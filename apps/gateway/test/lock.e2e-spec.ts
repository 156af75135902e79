// The lock feature through two gateway instances on one Redis (A on Fastify, B on Express):
// POST /boards/:id/archive contended across A and B (one 200 with a fence, one 409 with the holder's remaining
// lease as Retry-After), the fenced archive record, the board's cache tag evicted, `board.archived` published
// to sockets on the other instance; exactly one instance leads the housekeeping election (GET /health/ready and
// GET /leader); the lock metrics in GET /metrics; 503 when Redis is down.
import { PubSubService } from '@redwing/pubsub';
import type { Socket } from 'socket.io-client';
import { request } from '../../../libs/cache/test/helpers';
import { waitFor } from '../../../test/harness';
import type { StatsMinuteEvent } from '../src/leader/housekeeping.service';
import { collectEvents, liveClient, opened, subscribe } from './live-client';
import {
  gatewayEnv,
  getJson,
  NO_TELEMETRY,
  serveGateway,
  startTwoGateways,
  stopTwoGateways,
  untilCacheSynced,
  type Gateway,
  type TwoGateways,
} from './support';

interface Ready {
  status: string;
  leader?: Record<string, string>;
}

describe('locks across two gateway instances', () => {
  let gw: TwoGateways;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    gw = await startTwoGateways((adapter, redisUrl): Promise<Gateway> =>
      serveGateway(
        adapter,
        gatewayEnv(redisUrl, {
          ...NO_TELEMETRY,
          UPSTREAM_DELAY_MS: '300',
          LEADER_TTL: '1000',
          HOUSEKEEPING_INTERVAL: '100',
          ARCHIVE_LOCK_TTL: '5000',
          ARCHIVE_LOCK_WAIT: '0',
        }),
      ),
    );
    await Promise.all([untilCacheSynced(gw.a.base), untilCacheSynced(gw.b.base)]);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.disconnect();
    await stopTwoGateways(gw ?? {});
  });

  const archive = (g: Gateway, id: number) => request(`${g.base}/boards/${id}/archive`, { method: 'POST' });

  it('archive contended on A and B: one 200 with a fence, one 409 with Retry-After; then a larger fence', async () => {
    const [fromA, fromB] = await Promise.all([archive(gw.a, 7), archive(gw.b, 7)]);
    const statuses = [fromA.status, fromB.status].sort();
    expect(statuses).toEqual([200, 409]);
    const [ok, busy] = fromA.status === 200 ? [fromA, fromB] : [fromB, fromA];
    expect(ok.body).toEqual({ fence: expect.any(Number) });
    // The hint is the holder's remaining lease (ARCHIVE_LOCK_TTL 5 s), in seconds rounded up in the header.
    const hint = (busy.body as { retryAfter: number }).retryAfter;
    expect(busy.body).toMatchObject({ statusCode: 409, retryAfter: expect.any(Number) });
    expect(hint).toBeGreaterThan(0);
    expect(hint).toBeLessThanOrEqual(5_000);
    expect(Number(busy.headers['retry-after'])).toBe(Math.ceil(hint / 1_000));

    const again = await archive(gw.b, 7);
    expect(again.status).toBe(200);
    expect(again.body.fence).toBeGreaterThan(ok.body.fence);
    const record = await getJson<{ fence: number; boardId: number; cards: number }>(
      gw.a.base,
      '/boards/7/archive',
    );
    expect(record.status).toBe(200);
    expect(record.body).toMatchObject({ boardId: 7, fence: again.body.fence });
    expect((await getJson(gw.a.base, '/boards/8/archive')).status).toBe(404);
  }, 30_000);

  it("archive contended on one instance: the 409 carries the local holder's remaining lease", async () => {
    const [first, second] = await Promise.all([archive(gw.a, 13), archive(gw.a, 13)]);
    expect([first.status, second.status].sort()).toEqual([200, 409]);
    const busy = first.status === 409 ? first : second;
    const hint = (busy.body as { retryAfter: number }).retryAfter;
    expect(hint).toBeGreaterThan(1_000);
    expect(hint).toBeLessThanOrEqual(5_000);
    expect(Number(busy.headers['retry-after'])).toBe(Math.ceil(hint / 1_000));
  }, 30_000);

  it("archiving evicts the board's cache tag on both instances", async () => {
    await request(`${gw.a.base}/boards/9`);
    await request(`${gw.b.base}/boards/9`);
    expect((await request(`${gw.b.base}/boards/9`)).headers['x-cache']).toBe('HIT');
    expect((await archive(gw.a, 9)).status).toBe(200);
    await waitFor(
      'board 9 evicted on B',
      5_000,
      async () => (await request(`${gw.b.base}/boards/9`)).headers['x-cache'] === 'MISS',
    );
  }, 30_000);

  it('archiving on A publishes `board.archived` with its fence to sockets on B', async () => {
    await waitFor('both pub/sub subscribers up', 10_000, () =>
      [gw.a, gw.b].every((g) => g.app.get(PubSubService).getState() === 'up'),
    );
    const socket = liveClient(gw.b.base, sockets);
    await opened(socket);
    const events = collectEvents<{ channel: string; type: string; data: { boardId: number; fence: number } }>(
      socket,
    );
    expect(await subscribe(socket, 'board:12')).toEqual({ ok: true });
    const res = await archive(gw.a, 12);
    expect(res.status).toBe(200);
    await waitFor('board.archived on B', 5_000, () => events.some((e) => e.type === 'board.archived'));
    expect(events.find((e) => e.type === 'board.archived')).toMatchObject({
      channel: 'board:12',
      data: { boardId: 12, fence: res.body.fence },
    });
  }, 30_000);

  it('exactly one instance leads the housekeeping election, and only it runs the task', async () => {
    const roles = await waitFor('one leader and one follower', 10_000, async () => {
      const both = await Promise.all(
        [gw.a, gw.b].map(async (g) => (await getJson<Ready>(g.base, '/health/ready')).body),
      );
      const r = both.map((b) => b.leader?.['gateway-housekeeping']);
      return r.includes('leader') && r.includes('follower') ? r : undefined;
    });
    const leader = roles[0] === 'leader' ? gw.a : gw.b;
    const follower = leader === gw.a ? gw.b : gw.a;
    const leaderStatus = (await getJson<{ instance: string; fence: number }>(leader.base, '/leader')).body;
    expect(leaderStatus.fence).toEqual(expect.any(Number));
    // Over ~10 periods the record is written by the leader only, its run count rising.
    const seen = new Set<string>();
    let runs = 0;
    for (let i = 0; i < 10; i++) {
      const { last } = (await getJson<{ last: { instance: string; runs: number } }>(follower.base, '/leader'))
        .body;
      seen.add(last.instance);
      runs = Math.max(runs, last.runs);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen]).toEqual([leaderStatus.instance]);
    expect(runs).toBeGreaterThan(2);
  }, 30_000);

  it('the leader alone publishes the cluster digest (`stats.minute` on `stats`), once per run', async () => {
    await waitFor('both pub/sub subscribers up', 10_000, () =>
      [gw.a, gw.b].every((g) => g.app.get(PubSubService).getState() === 'up'),
    );
    const statuses = await waitFor('a leader', 10_000, async () => {
      const both = await Promise.all(
        [gw.a, gw.b].map(
          async (g) =>
            (await getJson<{ role: string; instance: string; fence: number }>(g.base, '/leader')).body,
        ),
      );
      return both.some((b) => b.role === 'leader') ? both : undefined;
    });
    const leader = statuses.find((b) => b.role === 'leader')!;
    // Subscribers on both instances: each sees one copy per run, all from the leader's term.
    const perInstance: Array<{ events: Array<{ channel: string; type: string; data: StatsMinuteEvent }> }> =
      [];
    for (const g of [gw.a, gw.b]) {
      const socket = liveClient(g.base, sockets);
      await opened(socket);
      perInstance.push({ events: collectEvents(socket) });
      expect(await subscribe(socket, 'stats')).toEqual({ ok: true });
    }
    await waitFor('10 digests on each instance', 10_000, () =>
      perInstance.every(({ events }) => events.filter((e) => e.type === 'stats.minute').length >= 10),
    );
    for (const { events } of perInstance) {
      const digests = events.filter((e) => e.type === 'stats.minute').map((e) => e.data);
      expect(new Set(digests.map((d) => `${d.by}/${d.fence}`))).toEqual(
        new Set([`${leader.instance}/${leader.fence}`]),
      );
      const runs = digests.map((d) => d.run);
      expect(runs).toEqual([...runs].sort((x, y) => x - y));
      expect(new Set(runs).size).toBe(runs.length); // one publisher: no run twice
      const last = digests[digests.length - 1];
      expect(last.minute % 60_000).toBe(0);
      expect(last.minute).toBeLessThanOrEqual(Date.now() - 60_000);
      // The digest is what the series held then: the same minute read now counts at least as much.
      const series = await getJson<{ series: Record<string, { sum: number }> }>(
        gw.a.base,
        `/stats/series?names=requests,errors&from=${last.minute}&to=${last.minute + 59_999}`,
      );
      expect(series.body.series.requests.sum).toBeGreaterThanOrEqual(last.requests);
      expect(series.body.series.errors.sum).toBeGreaterThanOrEqual(last.errors);
    }
  }, 30_000);

  it('GET /metrics counts lock acquisitions by outcome, wait and hold times, losses and leader changes', async () => {
    const value = (body: string, line: string) =>
      Number(
        body
          .split('\n')
          .find((l) => l.startsWith(`${line} `))
          ?.slice(line.length + 1) ?? 0,
      );
    const sum = (bodies: string[], line: string) => bodies.reduce((n, body) => n + value(body, line), 0);
    // Scraped until one instance leads (a term may be changing hands under load: then neither says 1).
    const text = await waitFor('the lock metrics of both instances, one leader', 10_000, async () => {
      const bodies = await Promise.all(
        [gw.a, gw.b].map(async (g) => (await request(`${g.base}/metrics`)).text),
      );
      return sum(bodies, 'redwing_lock_leader_state{election="gateway-housekeeping"}') === 1
        ? bodies
        : undefined;
    });
    // The archives above: at least five grants and two 409s (busy).
    expect(sum(text, 'redwing_lock_acquisitions_total{outcome="acquired"}')).toBeGreaterThanOrEqual(5);
    expect(sum(text, 'redwing_lock_acquisitions_total{outcome="busy"}')).toBeGreaterThanOrEqual(2);
    expect(sum(text, 'redwing_lock_wait_seconds_count{outcome="acquired"}')).toBeGreaterThanOrEqual(5);
    expect(sum(text, 'redwing_lock_hold_seconds_count')).toBeGreaterThanOrEqual(5);
    expect(sum(text, 'redwing_lock_leader_changes_total{change="elected"}')).toBeGreaterThanOrEqual(1);
    for (const body of text) expect(body).toContain('# TYPE redwing_lock_lost_total counter');
  }, 30_000);

  it('answers 503 with Retry-After when Redis is down (never archives without the lock)', async () => {
    await gw.redis.kill();
    await waitFor(
      'A degraded',
      5_000,
      async () => (await getJson<Ready>(gw.a.base, '/health/ready')).body.status === 'degraded',
    );
    const res = await archive(gw.a, 11);
    expect(res.status).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
