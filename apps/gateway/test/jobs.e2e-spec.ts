// The job routes of the real gateway, two instances on one Redis: A (fastify, JOB_QUEUE_ROLE=producer)
// enqueues board exports, B (express, worker) runs them; status, progress and result are visible from both.
// Also the dead-letter routes, and 503 + Retry-After when the queue's Redis is down (fail closed).
import { JobQueueService } from '@redwing/job-queue';
import { stopAll } from '../../../test/harness';
import { getJson, postJson, startJobGateways, stopTwoGateways, type TwoGateways, until } from './support';

interface Status {
  id: string;
  state: string;
  progress: number;
  result?: { boardId: number; url: string };
  error?: string;
}

describe('job routes across two gateways', () => {
  let gw: TwoGateways;

  beforeAll(async () => {
    gw = await startJobGateways();
  }, 60_000);

  afterAll(async () => {
    await stopTwoGateways(gw ?? {});
    await stopAll();
  });

  it('POST /boards/:id/export on A → 202 { jobId }; B processes it with progress; the result is visible on both', async () => {
    const res = await postJson(gw.a.base, '/boards/7/export', {});
    expect(res.status).toBe(202);
    const { jobId } = JSON.parse(res.text) as { jobId: string };
    expect(jobId).toMatch(/^\d+$/);
    const progress = new Set<number>();
    const done = await until('export completed', 20_000, async () => {
      const s = await getJson<Status>(gw.b.base, `/jobs/${jobId}`);
      progress.add(s.body.progress);
      return s.body.state === 'completed' ? s.body : undefined;
    });
    expect(done.result).toMatchObject({ boardId: 7, url: expect.stringContaining('board-7') });
    expect(Math.max(...progress)).toBe(100);
    const onA = await getJson<Status>(gw.a.base, `/jobs/${jobId}`);
    expect(onA.body).toMatchObject({ state: 'completed', progress: 100 });
    expect((await getJson(gw.a.base, '/jobs/424242')).status).toBe(404);
  }, 30_000);

  it('GET /jobs/dlq lists dead letters and POST /jobs/dlq/:id/replay puts one back', async () => {
    // A job no handler of the export processor takes fails for good at once (unrecoverable) on B.
    const jobs = gw.a.app.get(JobQueueService);
    const bad = await jobs.add('exports', 'no-such-export', { boardId: 1 });
    const dlq = await until('a dead letter', 20_000, async () => {
      const r = await getJson<{ size: number; items: Array<{ id: string; error: { message: string } }> }>(
        gw.b.base,
        '/jobs/dlq',
      );
      return r.body.size === 1 && r.body.items.length === 1 ? r.body : undefined;
    });
    expect(dlq.items[0]).toMatchObject({
      id: bad.id,
      error: { message: expect.stringContaining("no @Process('no-such-export')") },
    });
    expect((await getJson<Status>(gw.a.base, `/jobs/${bad.id}`)).body.state).toBe('dead-lettered');
    const replay = await postJson(gw.a.base, `/jobs/dlq/${bad.id}/replay`, {});
    expect(replay.status).toBe(202);
    expect((await postJson(gw.a.base, '/jobs/dlq/nope/replay', {})).status).toBe(404);
    await until(
      'dead-lettered again after the replay',
      20_000,
      async () => (await getJson<{ size: number }>(gw.a.base, '/jobs/dlq')).body.size === 1,
    );
    const counts = await getJson<{ counts: Record<string, number> }>(gw.a.base, '/jobs');
    expect(counts.body.counts).toMatchObject({ 'dead-lettered': 1 });
  }, 60_000);

  it('answers 503 with Retry-After while the queue Redis is down (fail closed), and accepts again after', async () => {
    await gw.redis.kill();
    const down = await until('a 503', 10_000, async () => {
      const r = await postJson(gw.a.base, '/boards/3/export', {});
      return r.status === 503 ? r : undefined;
    });
    expect(Number(down.headers['retry-after'])).toBeGreaterThan(0);
    await gw.redis.restart();
    await until(
      'enqueue accepted again',
      20_000,
      async () => (await postJson(gw.a.base, '/boards/3/export', {})).status === 202,
    );
  }, 60_000);
});
