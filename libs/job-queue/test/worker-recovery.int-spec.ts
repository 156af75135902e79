// A worker whose Redis is killed three times within about two seconds, while it is processing, resumes by
// itself: it processes jobs added afterwards, and its health and metrics say it recovered.
import { Injectable } from '@nestjs/common';
import { MetricsService } from '@redwing/metrics';
import { JobQueueUnavailableError, Process, Processor, type Job } from '@redwing/job-queue';
import { TestMetricsModule } from '../../../test/nest-testing';
import { bootJobs, RedisServer, sleep, stopAll, waitFor, type Booted } from './helpers';

const processed = new Set<string>();

@Injectable()
@Processor({ queue: 'recover', concurrency: 50 })
class RecoverProcessor {
  @Process()
  async run(job: Job<{ tag: string }>) {
    await sleep(5);
    processed.add(job.data.tag);
  }
}

describe('job queue worker recovery', () => {
  let booted: Booted | undefined;
  afterAll(async () => {
    await booted?.app.close();
    await stopAll();
  });

  it('a worker whose Redis is killed 3 times within ~2 s processes new jobs afterwards and reports it recovered', async () => {
    // appendfsync always: every write waits for the disk, so commands are in flight when Redis dies.
    const server = await RedisServer.start({ appendonly: true, appendfsync: 'always' });
    booted = await bootJobs({
      redis: { url: server.url() },
      jobs: { enqueueTimeout: 500 },
      queues: [{ name: 'recover', attempts: 5, backoff: { type: 'fixed', delay: 50 } }],
      providers: [RecoverProcessor],
      imports: [TestMetricsModule],
    });
    const { jobs, app } = booted;
    const metrics = app.get(MetricsService);
    const add = async (tag: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          return await jobs.add('recover', 'x', { tag });
        } catch (err) {
          if (!(err instanceof JobQueueUnavailableError) || Date.now() > deadline) throw err;
          await sleep(50);
        }
      }
    };

    for (let i = 0; i < 20; i++) await add(`before-${i}`);
    await waitFor('jobs before the kills processed', 10_000, () => processed.size === 20);
    expect(jobs.getHealth().workers).toEqual([
      expect.objectContaining({ queue: 'recover', state: 'running', recoveries: 0 }),
    ]);

    // Jobs keep arriving (and the worker keeps fetching and finishing them) while Redis dies three times
    // within about two seconds.
    let stop = false;
    let during = 0;
    const producer = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 50 }, (_, i) => ({
          name: 'x',
          data: { tag: `during-${during}-${i}` },
        }));
        await jobs.addBulk('recover', batch).then(
          () => during++,
          () => sleep(20),
        );
        await sleep(2);
      }
    })();
    const t0 = Date.now();
    for (let kill = 0; kill < 3; kill++) {
      await sleep(200);
      await server.kill('SIGKILL');
      await server.restart();
    }
    const killWindow = Date.now() - t0;
    stop = true;
    await producer;

    // New jobs after the kills (the server keeps no data across restarts here): every one is processed.
    const after = Array.from({ length: 50 }, (_, i) => `after-${i}`);
    for (const tag of after) await add(tag);
    await waitFor(
      'every job added after the kills processed',
      30_000,
      () => after.every((t) => processed.has(t)),
      {
        intervalMs: 50,
        details: () =>
          `processed ${after.filter((t) => processed.has(t)).length}/50 after the kills; kill window ${killWindow} ms; health ${JSON.stringify(jobs.getHealth())}`,
      },
    );
    const health = jobs.getHealth();
    expect(health.status).toBe('up');
    expect(health.workers).toEqual([expect.objectContaining({ queue: 'recover', state: 'running' })]);
    expect(health.workers[0].recoveries).toBeGreaterThanOrEqual(1);
    expect(
      await metrics.sum('redwing_job_queue_workers_current', { queue: 'recover', state: 'running' }),
    ).toBe(1);
    expect(await metrics.sum('redwing_job_queue_worker_recoveries_total', { queue: 'recover' })).toBe(
      health.workers[0].recoveries,
    );
    expect(during).toBeGreaterThan(0);
  }, 90_000);
});
