// The "Job queue" rows of RELIABILITY.md, each with its figure: worker SIGKILL (all recovered by the stall
// checker), graceful drain on SIGTERM (no new fetch, short jobs finish, the rest recovered, 0 lost), poison jobs
// (always throws / unrecoverable → dead-letter queue after the configured attempts while
// healthy jobs keep flowing, ≥ 95 %; crashes the worker process → dead-letter queue after it crashed
// maxStalledCount + 1 worker processes, restarted by a supervisor, while every healthy job completes), and
// fail-closed enqueue with workers resuming after Redis returns.
import { Injectable } from '@nestjs/common';
import {
  JobQueueService,
  JobQueueUnavailableError,
  Process,
  Processor,
  UnrecoverableError,
  type Job,
} from '@redwing/job-queue';
import { ChildWorker } from './child-worker';
import { bootJobs, RedisServer, sleep, stopAll, waitFor, type Booted } from './helpers';

/** Jobs the in-process worker ran, by queue (it finishes at once: recovery is what is measured). */
const recovered = new Map<string, Array<{ id: string; stalledCounter: number }>>();

function recoveryProcessor(queue: string) {
  @Injectable()
  @Processor({ queue, concurrency: 20 })
  class RecoveryProcessor {
    @Process()
    run(job: Job<{ poison?: 'throw' | 'fatal' }>) {
      if (job.data.poison === 'throw') throw new Error('poison: always throws');
      if (job.data.poison === 'fatal') throw new UnrecoverableError('poison: unrecoverable');
      const list = recovered.get(queue) ?? [];
      list.push({ id: job.id!, stalledCounter: job.stalledCounter });
      recovered.set(queue, list);
    }
  }
  return RecoveryProcessor;
}

describe('job queue reliability', () => {
  let server: RedisServer;
  const apps: Booted[] = [];
  const children: ChildWorker[] = [];

  const boot = async (queue: string, role: 'worker' | 'producer', extra: object = {}) => {
    const b = await bootJobs({
      redis: { url: server.url() },
      jobs: { role, ...extra },
      queues: [{ name: queue, attempts: 3, backoff: { delay: 20 } }],
      providers: role === 'worker' ? [recoveryProcessor(queue)] : [],
    });
    apps.push(b);
    return b.jobs;
  };
  const child = async (env: Record<string, string>) => {
    const c = await ChildWorker.start({ REDIS_URL: server.url(), ...env });
    children.push(c);
    return c;
  };
  const completed = (jobs: JobQueueService, queue: string) => jobs.getCounts(queue).then((c) => c.completed);

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(apps.map((a) => a.app.close()));
    await stopAll();
  });

  it('worker SIGKILL: every job it held is recovered by the stall checker and completed', async () => {
    const producer = await boot('crash', 'producer');
    const worker = await child({ QUEUE: 'crash', CONCURRENCY: '8' });
    const total = 24;
    await producer.addBulk(
      'crash',
      Array.from({ length: total }, () => ({ name: 'slow', data: { ms: 30_000 } })),
    );
    await waitFor('8 active in the child', 20_000, () => worker.ids('start').length >= 8);
    worker.kill('SIGKILL');
    await worker.exited;
    const held = worker.ids('start');

    const survivor = await boot('crash', 'worker');
    await waitFor('all jobs completed', 30_000, async () => (await completed(survivor, 'crash')) === total);
    const runs = recovered.get('crash') ?? [];
    expect(runs).toHaveLength(total);
    expect(new Set(runs.map((r) => r.id)).size).toBe(total); // 0 lost, none twice
    const stalled = runs.filter((r) => r.stalledCounter >= 1).map((r) => r.id);
    expect(stalled.sort()).toEqual([...held].sort()); // exactly the jobs the dead worker held
    expect(held.length).toBeGreaterThanOrEqual(8);
  }, 90_000);

  it('graceful drain on SIGTERM: no new fetch, short jobs finish, the rest recovered, 0 lost', async () => {
    const producer = await boot('drain', 'producer');
    const worker = await child({ QUEUE: 'drain', CONCURRENCY: '4', DRAIN_TIMEOUT: '1500' });
    const jobs = [
      { name: 'short', data: { ms: 300 } },
      { name: 'long', data: { ms: 30_000 } },
      { name: 'short', data: { ms: 300 } },
      { name: 'long', data: { ms: 30_000 } },
      ...Array.from({ length: 20 }, () => ({ name: 'short', data: { ms: 300 } })),
    ];
    const added = await producer.addBulk('drain', jobs);
    const longIds = new Set(added.filter((j) => j.name === 'long').map((j) => j.id!));
    await waitFor('both long jobs active', 20_000, () =>
      [...longIds].every((id) => worker.ids('start').includes(id)),
    );
    worker.kill('SIGTERM');
    const exit = await worker.exited;

    const sigterm = worker.events.findIndex((e) => e.type === 'sigterm');
    expect(sigterm).toBeGreaterThanOrEqual(0);
    const startedAfter = worker.events.slice(sigterm).filter((e) => e.type === 'start');
    expect(startedAfter).toHaveLength(0); // no new fetch after SIGTERM
    const activeAtTerm = worker.events
      .slice(0, sigterm)
      .filter((e) => e.type === 'start')
      .map((e) => e.id!);
    const done = new Set(worker.ids('done'));
    const shortActive = activeAtTerm.filter(
      (id) =>
        !longIds.has(id) && !worker.events.slice(0, sigterm).some((e) => e.type === 'done' && e.id === id),
    );
    expect(shortActive.every((id) => done.has(id))).toBe(true); // short jobs finished during the drain
    expect([...longIds].some((id) => done.has(id))).toBe(false);
    expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);

    const survivor = await boot('drain', 'worker');
    await waitFor(
      'all jobs completed',
      30_000,
      async () => (await completed(survivor, 'drain')) === jobs.length,
    );
    const byParent = new Set((recovered.get('drain') ?? []).map((r) => r.id));
    for (const id of longIds) expect(byParent.has(id)).toBe(true); // left to the stall checker, recovered
    expect(done.size + byParent.size).toBe(jobs.length); // 0 lost, none run twice to completion
  }, 90_000);

  it('poison jobs (throws, unrecoverable) end in the DLQ after the configured attempts; healthy throughput ≥ 95 %', async () => {
    const jobs = await boot('poison', 'worker');
    const healthy = 300;
    await jobs.addBulk('poison', [
      ...Array.from({ length: 5 }, () => ({ name: 'p', data: { poison: 'throw' as const } })),
      ...Array.from({ length: 5 }, () => ({ name: 'p', data: { poison: 'fatal' as const } })),
      ...Array.from({ length: healthy }, () => ({ name: 'h', data: {} })),
    ]);
    const q = jobs.queue('poison');
    await waitFor('10 dead letters', 30_000, async () => (await q.deadLetterCount()) === 10);
    await waitFor('healthy jobs done', 30_000, async () => (await completed(jobs, 'poison')) === healthy);
    const letters = await q.deadLetters(0, 20);
    expect(
      letters.filter((l) => l.error.message === 'poison: always throws').map((l) => l.attemptsMade),
    ).toEqual([3, 3, 3, 3, 3]);
    expect(letters.filter((l) => l.error.name === 'UnrecoverableError').map((l) => l.attemptsMade)).toEqual([
      1, 1, 1, 1, 1,
    ]);
    expect(await completed(jobs, 'poison')).toBeGreaterThanOrEqual(0.95 * healthy);
    expect(await q.replayAllDeadLetters()).toBe(10);
    await waitFor('replayed poison back in the DLQ', 30_000, async () => (await q.deadLetterCount()) === 10);
  }, 90_000);

  it('poison job that crashes the worker process: dead-lettered after maxStalledCount + 1 crashes, never retried forever; healthy jobs all complete', async () => {
    const maxStalledCount = 2;
    const crashesEach = maxStalledCount + 1;
    const producer = await boot('crashpoison', 'producer');
    type Data = { ms?: number; crash?: 'exit' | 'kill' };
    const healthy = (n: number) => Array.from({ length: n }, () => ({ name: 'h', data: { ms: 5 } as Data }));
    const added = await producer.addBulk<Data>('crashpoison', [
      ...healthy(20),
      { name: 'poison-exit', data: { crash: 'exit' } },
      ...healthy(20),
      { name: 'poison-kill', data: { crash: 'kill' } },
      ...healthy(20),
    ]);
    const poisonIds = added.filter((j) => j.name.startsWith('poison')).map((j) => j.id!);
    const healthyIds = added.filter((j) => j.name === 'h').map((j) => j.id!);
    const q = producer.queue('crashpoison');

    // A supervisor: start a worker process, start another whenever one dies, at most 3 more than the crashes
    // the figure allows (a poison job retried forever would run out of them).
    const env = { QUEUE: 'crashpoison', CONCURRENCY: '1', MAX_STALLED: String(maxStalledCount) };
    const maxProcesses = poisonIds.length * crashesEach + 4;
    const processes: ChildWorker[] = [await child(env)];
    const deadline = Date.now() + 150_000;
    const finished = async () =>
      (await q.deadLetterCount()) === poisonIds.length && (await completed(producer, 'crashpoison')) === 60;
    while (!(await finished())) {
      if (Date.now() > deadline) throw new Error(`not finished in 150 s after ${processes.length} processes`);
      const current = processes[processes.length - 1];
      if (!current.alive) {
        await current.exited;
        if (processes.length >= maxProcesses) throw new Error(`${processes.length} worker processes died`);
        processes.push(await child(env));
      }
      await sleep(100);
    }

    const starts = (id: string) =>
      processes.reduce((n, p) => n + p.ids('start').filter((s) => s === id).length, 0);
    for (const id of poisonIds) expect(starts(id)).toBe(crashesEach); // ran, crashed its process, exactly N times
    const exits = await Promise.all(processes.filter((p) => !p.alive).map((p) => p.exited));
    expect(exits).toHaveLength(poisonIds.length * crashesEach); // one dead process per poison run, no more
    expect(exits.filter((e) => e.code === 1)).toHaveLength(crashesEach); // process.exit(1)
    expect(exits.filter((e) => e.signal === 'SIGKILL')).toHaveLength(crashesEach); // killed hard
    const letters = await q.deadLetters(0, 10);
    expect(letters.map((l) => l.id).sort()).toEqual([...poisonIds].sort());
    for (const l of letters) expect(l.error.message).toMatch(/stalled more than allowable limit/);
    for (const id of poisonIds) expect((await q.describe(id))?.state).toBe('dead-lettered');
    const done = new Set(processes.flatMap((p) => p.ids('done')));
    expect(healthyIds.filter((id) => !done.has(id))).toEqual([]); // every healthy job completed
    expect(await completed(producer, 'crashpoison')).toBe(healthyIds.length);
  }, 180_000);

  it('fails closed while Redis is down (typed error, fast), and workers resume by themselves', async () => {
    const jobs = await boot('outage', 'worker', { enqueueTimeout: 1_000 });
    await jobs.add('outage', 'before', {});
    await waitFor('first job done', 10_000, async () => (await completed(jobs, 'outage')) === 1);
    await server.kill();
    const t0 = Date.now();
    const err = await jobs.add('outage', 'during', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobQueueUnavailableError);
    expect((err as JobQueueUnavailableError).retryAfter).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThanOrEqual(1_000 + 100);
    await server.restart();
    await waitFor('enqueue accepted again', 15_000, () =>
      jobs.add('outage', 'after', {}).then(
        () => true,
        () => false,
      ),
    );
    // The server keeps no data across the restart here; the job added after it must be processed.
    await waitFor('worker resumed', 20_000, () => (recovered.get('outage') ?? []).length >= 2);
  }, 60_000);
});
