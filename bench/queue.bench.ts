// queue: 20,000 no-op jobs through a queue with a worker of concurrency 50, timed from the first add to the
// last job processed. Ours: JobQueueModule (addBulk in chunks of 1,000, a @Processor with concurrency 50,
// the metrics registry under REDWING_METRICS, so jobs are counted and timed as in production) vs raw BullMQ (Queue.addBulk + Worker, concurrency 50) on plain ioredis
// connections, same Redis, same retention (keep 1,000 completed), 1 attempt. Goal (BENCH.md): ≥ 0.9×.
//
//   npm run bench -- queue --rounds 3            (each round: 20k jobs per side; --ms is not used)
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { MetricsService } from '@redwing/metrics';
import { JobQueueModule, JobQueueService, Process, Processor } from '@redwing/job-queue';
import { Queue, Worker } from 'bullmq';
import {
  benchMain,
  printJsonLine,
  runComparison,
  withRedis,
  type BenchRedis,
  type BenchSettings,
  type ComparisonSummary,
} from './lib';
import { MetricsRegistryModule } from './lib/metrics-registry';
import { createContext } from './lib/nest-context';
import { benchRedisModule, peerRedis, readyClient } from './lib/redis-module';

const SCENARIO = 'queue';
const JOBS = 20_000;
const WARMUP_JOBS = 2_000;
const CONCURRENCY = 50;
const CHUNK = 1_000;

let oursDone = 0;

@Injectable()
@Processor({ queue: 'bench-ours', concurrency: CONCURRENCY })
class NoopProcessor {
  @Process()
  run(): void {
    oursDone++;
  }
}

interface Run {
  jobs: number;
  seconds: number;
  cpuUs: number;
}

async function timed(jobs: number, add: (n: number) => Promise<void>, done: () => number): Promise<Run> {
  const target = done() + jobs;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (let sent = 0; sent < jobs; sent += CHUNK) await add(Math.min(CHUNK, jobs - sent));
  const deadline = Date.now() + 120_000;
  while (done() < target) {
    if (Date.now() > deadline)
      throw new Error(`only ${done() - target + jobs} of ${jobs} jobs processed in 120 s`);
    await new Promise((r) => setTimeout(r, 2));
  }
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  return { jobs, seconds, cpuUs: used.user + used.system };
}

@Module({
  imports: [
    // enqueueTimeout: a 1,000-job addBulk may take seconds on a loaded machine; the peer has no limit at all.
    JobQueueModule.forRoot({
      useEnv: false,
      attempts: 1,
      completedRetention: { count: 1_000 },
      enqueueTimeout: 30_000,
    }),
    JobQueueModule.registerQueue({ name: 'bench-ours' }),
  ],
  providers: [NoopProcessor],
})
class OursModule {}

async function run(redis: BenchRedis, settings: BenchSettings): Promise<ComparisonSummary[]> {
  const app: INestApplicationContext = await createContext([
    benchRedisModule(redis.url),
    MetricsRegistryModule,
    OursModule,
  ]);
  await readyClient(app);
  const ours = app.get(JobQueueService).queue('bench-ours');
  const connection = peerRedis(redis, {
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
    enableOfflineQueue: true,
  });
  await connection.connect();
  const peerQueue = new Queue('bench-peer', {
    connection,
    defaultJobOptions: { attempts: 1, removeOnComplete: { count: 1_000 } },
  });
  let peerDone = 0;
  const peerWorker = new Worker(
    'bench-peer',
    async () => {
      peerDone++;
    },
    { connection, concurrency: CONCURRENCY },
  );
  const batch = (n: number) => Array.from({ length: n }, () => ({ name: 'noop', data: {} }));
  const sides = {
    ours: (jobs: number) =>
      timed(
        jobs,
        async (n) => void (await ours.addBulk(batch(n))),
        () => oursDone,
      ),
    peer: (jobs: number) =>
      timed(
        jobs,
        async (n) => void (await peerQueue.addBulk(batch(n))),
        () => peerDone,
      ),
  };
  try {
    const { summary } = await runComparison<Run>({
      scenario: SCENARIO,
      variant: 'noop-20k-c50',
      description: `${JOBS} no-op jobs, addBulk in chunks of ${CHUNK}, worker concurrency ${CONCURRENCY}, first add to last processed`,
      concurrency: CONCURRENCY,
      goal: 0.9,
      settings,
      sides: { ours: { label: 'JobQueue + @Processor' }, peer: { label: 'BullMQ Queue + Worker' } },
      warmUp: (side) => sides[side](WARMUP_JOBS),
      measure: (side) => sides[side](JOBS),
      fields: (r) => ({
        jobsPerSec: Math.round(r.jobs / r.seconds),
        seconds: r.seconds,
        cpuUsPerJob: r.cpuUs / r.jobs,
      }),
      opsPerSec: (r) => r.jobs / r.seconds,
      cpuUsPerOp: (r) => r.cpuUs / r.jobs,
    });
    summary.meetsGoal = summary.ratio.median >= 0.9;
    const counted = await app
      .get(MetricsService)
      .sum('redwing_job_queue_processed_total', { queue: 'bench-ours', outcome: 'completed' });
    if (counted !== oursDone)
      throw new Error(`metrics counted ${counted} of ${oursDone} jobs: registry not in use`);
    printJsonLine(summary);
    return [summary];
  } finally {
    await peerWorker.close();
    await peerQueue.close();
    connection.disconnect();
    await app.close();
  }
}

benchMain(SCENARIO, (settings) => withRedis((redis) => run(redis, settings)));
