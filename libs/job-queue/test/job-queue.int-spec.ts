// JobQueueModule against real Redis, standalone and a 3-master Cluster: processors and named handlers,
// priorities/delays/retries, idempotency keys, the dead-letter queue, schedulers, fail-closed enqueue.
import { Injectable } from '@nestjs/common';
import {
  JobQueueConfigError,
  JobQueueService,
  Process,
  Processor,
  UnrecoverableError,
  type Job,
  type JobContext,
} from '@redwing/job-queue';
import { bootJobs, redisFor, RedisCluster, RedisServer, stopAll, waitFor, type Booted } from './helpers';

interface Seen {
  name: string;
  id: string;
  data: unknown;
  ctx: JobContext;
}
const seen: Seen[] = [];
const failTimes = new Map<string, number>();

@Injectable()
@Processor({ queue: 'mail', concurrency: 4 })
class MailProcessor {
  @Process('welcome')
  welcome(job: Job<{ to: string }>, ctx: JobContext) {
    seen.push({ name: 'welcome', id: job.id!, data: job.data, ctx });
    return { sent: job.data.to };
  }

  @Process('flaky')
  async flaky(job: Job<{ key: string; failures: number }>, ctx: JobContext) {
    seen.push({ name: 'flaky', id: job.id!, data: job.data, ctx });
    const n = (failTimes.get(job.data.key) ?? 0) + 1;
    failTimes.set(job.data.key, n);
    if (n <= job.data.failures) throw new Error(`flaky failure ${n}`);
    return n;
  }

  @Process('fatal')
  fatal() {
    throw new UnrecoverableError('bad input, never retry');
  }

  @Process()
  other(job: Job, ctx: JobContext) {
    seen.push({ name: `*${job.name}`, id: job.id!, data: job.data, ctx });
    return 'other';
  }
}

const ephemeralRuns: Array<string | undefined> = [];

@Injectable()
@Processor('ephemeral')
class EphemeralProcessor {
  @Process()
  run(_job: Job, ctx: JobContext) {
    ephemeralRuns.push(ctx.idempotencyKey);
  }
}

describe.each(['standalone', 'cluster'] as const)('JobQueueModule on %s', (topology) => {
  let booted: Booted;
  let jobs: JobQueueService;

  beforeAll(async () => {
    const target =
      topology === 'cluster' ? await RedisCluster.start({ replicasPerMaster: 0 }) : await RedisServer.start();
    booted = await bootJobs({
      redis: redisFor(target),
      queues: [
        { name: 'mail', attempts: 3, backoff: { delay: 20, jitter: 0.5 } },
        { name: 'reports' },
        { name: 'ephemeral', completedRetention: { count: 0 } },
      ],
      providers: [MailProcessor, EphemeralProcessor],
    });
    jobs = booted.jobs;
  }, 90_000);

  afterAll(async () => {
    await booted?.app.close();
    await stopAll();
  });

  const finished = (id: string) =>
    waitFor(`job ${id} finished`, 15_000, async () => {
      const s = await jobs.describe('mail', id);
      return s && ['completed', 'failed', 'dead-lettered'].includes(s.state) ? s : undefined;
    });

  it('runs named handlers and the catch-all, with the result on describe()', async () => {
    const a = await jobs.add('mail', 'welcome', { to: 'ada@example.com' });
    const b = await jobs.queue('mail').add('digest', { week: 3 });
    const sa = await finished(a.id!);
    const sb = await finished(b.id!);
    expect(sa).toMatchObject({ state: 'completed', result: { sent: 'ada@example.com' }, name: 'welcome' });
    expect(sb).toMatchObject({ state: 'completed', result: 'other' });
    expect(seen.find((s) => (s.data as { week?: number }).week === 3)?.name).toBe('*digest');
  });

  it('retries with backoff, then completes; the context counts attempts', async () => {
    const job = await jobs.add('mail', 'flaky', { key: `${topology}-retry`, failures: 2 });
    const s = await finished(job.id!);
    expect(s).toMatchObject({ state: 'completed', result: 3 });
    const attempts = seen
      .filter((x) => (x.data as { key?: string }).key === `${topology}-retry`)
      .map((x) => [x.ctx.attempt, x.ctx.isFinalAttempt]);
    expect(attempts).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
  });

  it('dead-letters after the configured attempts with error, stack and attempts; replay and purge', async () => {
    const mail = jobs.queue('mail');
    await mail.purgeDeadLetters();
    const job = await mail.add('flaky', { key: `${topology}-dead`, failures: 99 });
    await waitFor('dead letter', 15_000, async () => (await mail.deadLetterCount()) === 1);
    const [letter] = await mail.deadLetters();
    expect(letter).toMatchObject({
      id: job.id,
      name: 'flaky',
      attemptsMade: 3,
      error: { message: 'flaky failure 3' },
    });
    expect(letter.error.stack).toContain('flaky failure 3');
    expect((await mail.describe(job.id!))?.state).toBe('dead-lettered');

    failTimes.set(`${topology}-dead`, 1_000); // the next attempt succeeds
    await mail.replayDeadLetter(job.id!);
    expect(await mail.deadLetterCount()).toBe(0);
    expect(await finished(job.id!)).toMatchObject({ state: 'completed' });

    const fatal = await mail.add('fatal', {});
    await waitFor('unrecoverable dead letter', 15_000, async () => (await mail.deadLetterCount()) === 1);
    expect((await mail.deadLetters())[0]).toMatchObject({
      id: fatal.id,
      attemptsMade: 1,
      error: { name: 'UnrecoverableError' },
    });
    expect(await mail.purgeDeadLetters()).toBe(1);
    expect(await mail.deadLetterCount()).toBe(0);
  });

  it('returns the same job for the same idempotency key, also after completion; the handler gets the key', async () => {
    const key = `order-${topology}-42`;
    const first = await jobs.add('mail', 'welcome', { to: 'first' }, { idempotencyKey: key });
    await finished(first.id!);
    const again = await jobs.add('mail', 'welcome', { to: 'second' }, { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(again.data).toEqual({ to: 'first' });
    const runs = seen.filter((s) => s.ctx.idempotencyKey === key);
    expect(runs).toHaveLength(1);
    expect(runs[0].ctx.idempotencyKey).toBe(key);
  });

  it('keeps the key for the whole window after retention removed the completed job', async () => {
    const key = `gone-${topology}`;
    const first = await jobs.add('ephemeral', 'x', { n: 1 }, { idempotencyKey: key });
    await waitFor(
      'retention removed the job',
      15_000,
      async () => !(await jobs.getJob('ephemeral', first.id!)) && ephemeralRuns.length > 0,
    );
    const again = await jobs.add('ephemeral', 'x', { n: 2 }, { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(await jobs.getJob('ephemeral', first.id!)).toBeUndefined(); // no second job was created
    expect(ephemeralRuns.filter((r) => r === key)).toHaveLength(1);
  });

  it('honours priority and delay, and counts per state', async () => {
    const reports = jobs.queue('reports'); // no processor: jobs stay put
    await reports.add('low', {}, { priority: 10 });
    await reports.add('high', {}, { priority: 1 });
    await reports.add('later', {}, { delay: 60_000 });
    await reports.add('now', {});
    const counts = await reports.getCounts();
    expect(counts).toMatchObject({ waiting: 1, prioritized: 2, delayed: 1, 'dead-lettered': 0 });
    await reports.pause();
    expect(await reports.isPaused()).toBe(true);
    await reports.resume();
  });

  it('creates a repeating job from a scheduler', async () => {
    const mail = jobs.queue('mail');
    await mail.schedule(`tick-${topology}`, { repeat: { every: 200 }, name: 'tick', data: { t: topology } });
    await waitFor('two scheduled runs', 10_000, () => seen.filter((s) => s.name === '*tick').length >= 2);
    expect(await mail.unschedule(`tick-${topology}`)).toBe(true);
  });

  it('keeps every key of a queue in one Cluster slot (hash tag)', () => {
    expect(jobs.queue('mail').queue.opts.prefix).toMatch(/\{mail\}$/);
  });
});

describe('configuration', () => {
  it('rejects an unknown option with a did-you-mean, naming the field', async () => {
    const server = await RedisServer.start();
    await expect(
      bootJobs({ redis: { url: server.url() }, jobs: { atempts: 3 } as never, queues: [{ name: 'q' }] }),
    ).rejects.toThrow(/atempts is an unknown option; did you mean attempts/);
    await expect(bootJobs({ redis: { url: server.url() }, queues: [{ name: 'bad:name' }] })).rejects.toThrow(
      JobQueueConfigError,
    );
    await expect(
      bootJobs({ redis: { url: server.url() }, queues: [{ name: 'other' }], providers: [MailProcessor] }),
    ).rejects.toThrow(/@Processor\(MailProcessor\)\.queue names "mail", which is not registered/);
    await stopAll();
  }, 30_000);
});
