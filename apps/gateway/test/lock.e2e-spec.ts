// The lock feature through two gateway instances on one Redis (A on Fastify, B on Express):
// POST /boards/:id/archive contended across A and B (one 200 with a fence, one 409 with Retry-After), the
// fenced archive record, the board's cache tag evicted; exactly one instance leads the housekeeping election
// (GET /health/ready and GET /leader); 503 when Redis is down.
import { request } from '../../../libs/cache/test/helpers';
import { waitFor } from '../../../test/harness';
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

  afterAll(() => stopTwoGateways(gw ?? {}));

  const archive = (g: Gateway, id: number) => request(`${g.base}/boards/${id}/archive`, { method: 'POST' });

  it('archive contended on A and B: one 200 with a fence, one 409 with Retry-After; then a larger fence', async () => {
    const [fromA, fromB] = await Promise.all([archive(gw.a, 7), archive(gw.b, 7)]);
    const statuses = [fromA.status, fromB.status].sort();
    expect(statuses).toEqual([200, 409]);
    const [ok, busy] = fromA.status === 200 ? [fromA, fromB] : [fromB, fromA];
    expect(ok.body).toEqual({ fence: expect.any(Number) });
    expect(Number(busy.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(busy.body).toMatchObject({ statusCode: 409, retryAfter: expect.any(Number) });

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
