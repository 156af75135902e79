import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import {
  DEFAULT_CLIENT,
  describeRedisError,
  REDWING_METRICS,
  RedisClientManager,
  type ManagedRedisClient,
  type MetricsRegistry,
  type RedisConnection,
} from '@redwing/redis';
import type { Job } from 'bullmq';
import { Cluster } from 'ioredis';
import {
  processorError,
  resolveJobQueueConfig,
  resolveProcessorOptions,
  resolveQueueConfig,
  type ResolvedJobQueueConfig,
} from './job-queue.config';
import { Process, Processor } from './job-queue.decorators';
import { JobQueueConfigError, JobQueueDurabilityError } from './job-queue.errors';
import type {
  BulkJob,
  JobAddOptions,
  JobCounts,
  JobHandler,
  JobQueueHealth,
  JobQueueModuleOptions,
  JobStatus,
  JobWorkerHealth,
  RegisterQueueOptions,
} from './job-queue.interfaces';
import { JobQueueMetrics } from './job-queue.metrics';
import { JOB_QUEUE_MODULE_OPTIONS } from './job-queue.module-definition';
import { JobQueue } from './job-queue';
import { JobWorker, type ProcessorBinding } from './job-worker';

const STARTUP_CHECK_WAIT = 1_500;

/**
 * Registry and entry point of the app's job queues: enqueue and inspect by queue name, health for readiness,
 * and the lifecycle (durability guard at start-up, workers for `@Processor()` classes when the role is
 * `worker`, drain and close on shutdown). Per-queue handles: `queue(name)` or `@InjectQueue(name)`.
 */
@Injectable()
export class JobQueueService
  implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  /** The options after environment, defaults and validation. */
  readonly config: ResolvedJobQueueConfig;
  /** Name of the Redis client the queues run on. */
  readonly clientName: string;
  private readonly logger = new Logger('JobQueue');
  private readonly queues = new Map<string, JobQueue>();
  private readonly bindings = new Map<string, ProcessorBinding>();
  private readonly workers: JobWorker[] = [];
  private readonly metrics: JobQueueMetrics;
  private readonly prefix: string;
  private client?: ManagedRedisClient;
  private producer?: RedisConnection;
  private workerConnection?: RedisConnection;
  private durability: { policy?: string; aof?: boolean } = {};
  private closing = false;
  private closed?: Promise<void>;

  constructor(
    @Inject(JOB_QUEUE_MODULE_OPTIONS) options: JobQueueModuleOptions,
    private readonly manager: RedisClientManager,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Optional() @Inject(REDWING_METRICS) metrics?: MetricsRegistry,
  ) {
    this.config = resolveJobQueueConfig(options ?? {});
    this.clientName = this.config.client ?? (manager.has('durable') ? 'durable' : DEFAULT_CLIENT);
    if (!manager.has(this.clientName)) {
      throw new JobQueueConfigError(
        'client',
        `names Redis client "${this.clientName}", which is not configured; add it under RedisClientModule.forRoot({ clients })`,
      );
    }
    this.prefix = this.config.prefix ?? manager.key('job-queue');
    this.metrics = new JobQueueMetrics(
      metrics,
      () => this.allCounts(),
      () => this.workerHealth(),
    );
  }

  /** Register a queue (called by `JobQueueModule.registerQueue`). @throws JobQueueConfigError @internal */
  register(options: RegisterQueueOptions): JobQueue {
    const config = resolveQueueConfig(this.config, options);
    if (this.queues.has(config.name)) {
      throw new JobQueueConfigError(
        `registerQueue(${config.name})`,
        'registers a queue twice; register each name once',
      );
    }
    const queue = new JobQueue(config, {
      connection: this.producerConnection(),
      prefix: this.queuePrefix(config.name),
      idempotencyWindow: this.config.idempotencyWindow,
      enqueueTimeout: this.config.enqueueTimeout,
      refusal: () => this.refusal(),
      metrics: this.metrics,
    });
    this.queues.set(config.name, queue);
    return queue;
  }

  /**
   * The handle of a registered queue.
   * @throws JobQueueConfigError when `name` was not registered
   */
  queue(name: string): JobQueue {
    const queue = this.queues.get(name);
    if (!queue) {
      throw new JobQueueConfigError(
        'queue',
        `"${name}" is not registered; add JobQueueModule.registerQueue({ name: '${name}' }) (registered: ${[...this.queues.keys()].join(', ') || 'none'})`,
      );
    }
    return queue;
  }

  /** Every registered queue. */
  all(): JobQueue[] {
    return [...this.queues.values()];
  }

  /** `queue(queueName).add(name, data, opts)`. @throws JobQueueUnavailableError */
  add<T = unknown>(queueName: string, name: string, data: T, opts?: JobAddOptions): Promise<Job<T>> {
    return this.queue(queueName).add(name, data, opts);
  }

  /** `queue(queueName).addBulk(jobs)`. @throws JobQueueUnavailableError */
  addBulk<T = unknown>(queueName: string, jobs: ReadonlyArray<BulkJob<T>>): Promise<Array<Job<T>>> {
    return this.queue(queueName).addBulk(jobs);
  }

  /** `queue(queueName).getJob(id)`. @throws JobQueueUnavailableError */
  getJob<T = unknown>(queueName: string, id: string): Promise<Job<T> | undefined> {
    return this.queue(queueName).getJob<T>(id);
  }

  /** `queue(queueName).describe(id)`. @throws JobQueueUnavailableError */
  describe(queueName: string, id: string): Promise<JobStatus | undefined> {
    return this.queue(queueName).describe(id);
  }

  /** `queue(queueName).getCounts()`. @throws JobQueueUnavailableError */
  getCounts(queueName: string): Promise<JobCounts> {
    return this.queue(queueName).getCounts();
  }

  /** `queue(queueName).pause()`. @throws JobQueueUnavailableError */
  pause(queueName: string): Promise<void> {
    return this.queue(queueName).pause();
  }

  /** `queue(queueName).resume()`. @throws JobQueueUnavailableError */
  resume(queueName: string): Promise<void> {
    return this.queue(queueName).resume();
  }

  /** `queue(queueName).retry(id)`. @throws JobNotFoundError, JobQueueUnavailableError */
  retry(queueName: string, id: string): Promise<void> {
    return this.queue(queueName).retry(id);
  }

  /** `queue(queueName).remove(id)`. @throws JobQueueUnavailableError */
  remove(queueName: string, id: string): Promise<boolean> {
    return this.queue(queueName).remove(id);
  }

  /** Counts of every queue, keyed by name. @throws JobQueueUnavailableError */
  async allCounts(): Promise<Map<string, JobCounts>> {
    const out = new Map<string, JobCounts>();
    for (const q of this.queues.values()) out.set(q.name, await q.getCounts());
    return out;
  }

  /** Jobs running in this instance now. */
  activeJobs(): number {
    return this.workers.reduce((n, w) => n + w.activeCount, 0);
  }

  /**
   * For readiness: `down` when enqueues are refused because the Redis may evict jobs; `degraded` while Redis is
   * unreachable (enqueues fail closed, workers resume by themselves); else `up`.
   */
  getHealth(): JobQueueHealth {
    const base = {
      role: this.config.role,
      client: this.clientName,
      ...(this.durability.policy !== undefined ? { maxmemoryPolicy: this.durability.policy } : {}),
      ...(this.durability.aof !== undefined ? { aof: this.durability.aof } : {}),
      workers: this.workerHealth(),
    };
    const eviction = this.evictionReason();
    if (eviction && this.config.durabilityGuard !== 'warn')
      return { status: 'down', reason: eviction, ...base };
    const reason = this.refusal();
    return reason ? { status: 'degraded', reason, ...base } : { status: 'up', ...base };
  }

  private workerHealth(): JobWorkerHealth[] {
    return this.workers.map((w) => ({
      queue: w.queueName,
      state: w.state,
      recoveries: w.recoveries,
      active: w.activeCount,
    }));
  }

  async onModuleInit(): Promise<void> {
    try {
      this.discoverProcessors();
    } catch (err) {
      await this.abortStartup();
      throw err;
    }
  }

  private discoverProcessors(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const cls = wrapper.metatype as (new (...args: never[]) => unknown) | null;
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (!cls || typeof cls !== 'function' || !instance || wrapper.isNotMetatype) continue;
      const raw = this.reflector.get(Processor, cls);
      if (raw === undefined) continue;
      const { queue, concurrency } = resolveProcessorOptions(raw, cls.name);
      const at = `@Processor(${cls.name})`;
      if (!this.queues.has(queue)) {
        throw processorError(
          `${at}.queue`,
          `names "${queue}", which is not registered; add JobQueueModule.registerQueue({ name: '${queue}' })`,
        );
      }
      const existing = this.bindings.get(queue);
      if (existing) {
        throw processorError(
          at,
          `processes "${queue}", which ${existing.className} already processes; use one processor class per queue`,
        );
      }
      const handlers = new Map<string, JobHandler>();
      for (const method of this.scanner.getAllMethodNames(Object.getPrototypeOf(instance) as object)) {
        const fn = instance[method];
        if (typeof fn !== 'function') continue;
        const jobName = this.reflector.get(Process, fn as () => unknown);
        if (jobName === undefined) continue;
        if (typeof jobName !== 'string' || jobName === '') {
          throw processorError(
            `@Process(${cls.name}.${method})`,
            'must name a job (a non-empty string) or take no argument',
          );
        }
        if (handlers.has(jobName)) {
          throw processorError(
            `@Process(${cls.name}.${method})`,
            `handles "${jobName}", which another method of ${cls.name} already handles`,
          );
        }
        handlers.set(jobName, (fn as JobHandler).bind(instance));
      }
      if (handlers.size === 0) throw processorError(at, 'has no @Process() method');
      this.bindings.set(queue, { className: cls.name, concurrency, handlers });
    }
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.queues.size === 0) return;
    if (await this.producerReady(STARTUP_CHECK_WAIT)) {
      await this.checkDurability();
      const eviction = this.evictionReason();
      if (eviction && this.config.durabilityGuard === 'refuse') {
        await this.abortStartup();
        throw new JobQueueDurabilityError(this.clientName, this.durability.policy!);
      }
    } else {
      this.logger.warn(
        `Redis client "${this.clientName}" is not reachable yet; enqueues fail closed until it is`,
      );
    }
    if (this.config.role !== 'worker') return;
    for (const [name, binding] of this.bindings) {
      const worker = new JobWorker(this.queue(name), binding, {
        connection: this.workerConnectionOf(),
        prefix: this.queuePrefix(name),
        metrics: this.metrics,
      });
      this.workers.push(worker);
      worker.start();
    }
  }

  /** Drain: stop fetching, let active jobs finish within `drainTimeout`, leave the rest to the stall checker. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.drain(this.config.drainTimeout)));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Drain the workers, close every queue and the connections this module opened. Safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.beforeApplicationShutdown();
      this.closing = true;
      await Promise.all(this.all().map((q) => q.close().catch(() => undefined)));
      await Promise.all(
        [this.producer, this.workerConnection].map((c) => (c ? closeConnection(c) : undefined)),
      );
    })();
    return this.closed;
  }

  /**
   * Start-up is failing, and Nest calls no shutdown hook for an app that never started: close what is open
   * (ours, and the Redis clients, which would otherwise keep the process alive).
   */
  private async abortStartup(): Promise<void> {
    await this.close();
    await this.manager.close();
  }

  private managed(): ManagedRedisClient {
    this.client ??= this.manager.get(this.clientName);
    return this.client;
  }

  private queuePrefix(name: string): string {
    return `${this.prefix}:{${name}}`;
  }

  /** Enqueues fail fast: no offline queue, a command timeout. Shared by every queue. */
  private producerConnection(): RedisConnection {
    if (!this.producer) {
      this.producer = this.managed().createDedicated('job-queue producer', {
        commandTimeout: this.config.enqueueTimeout,
        enableOfflineQueue: false,
      });
      this.producer.on('ready', () => void this.checkDurability());
    }
    return this.producer;
  }

  /**
   * Workers wait through outages: no command timeout, offline queue, endless retries (what BullMQ requires),
   * and commands that were in flight when the connection dropped are sent again after the reconnect. The
   * Redwing default (`autoResendUnfulfilledCommands: false`, made safe by `commandTimeout`) would leave them
   * pending forever here, since nothing times them out: a `moveToActive` lost that way parks BullMQ's fetch
   * loop for good (a worker whose Redis restarted a few times in a row stopped processing). Re-sending is
   * safe for BullMQ's scripts: they check the job's lock token, and a job moved to active by a command whose
   * reply was lost is recovered by the stall checker.
   */
  private workerConnectionOf(): RedisConnection {
    this.workerConnection ??= this.managed().createDedicated('job-queue worker', {
      commandTimeout: undefined,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: true,
    });
    return this.workerConnection;
  }

  private refusal(): string | undefined {
    if (this.closing) return 'closed';
    const eviction = this.evictionReason();
    if (eviction && this.config.durabilityGuard !== 'warn') return eviction;
    if (!this.producer || this.producer.status !== 'ready') return 'disconnected';
    if (this.managed().getBreakerState() === 'open') return 'breaker-open';
    return undefined;
  }

  private evictionReason(): string | undefined {
    const policy = this.durability.policy;
    return policy !== undefined && policy !== 'noeviction'
      ? `maxmemory-policy is "${policy}" on the queue Redis ("${this.clientName}"); queued jobs may be evicted — set noeviction`
      : undefined;
  }

  private producerReady(timeout: number): Promise<boolean> {
    const conn = this.producerConnection();
    if (conn.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        conn.off('ready', onReady);
        conn.off('error', onError);
        resolve(ok);
      };
      const onReady = () => done(true);
      const onError = () => done(false);
      const timer = setTimeout(() => done(false), timeout);
      conn.on('ready', onReady);
      conn.on('error', onError);
    });
  }

  /** Read `maxmemory-policy` and `aof_enabled` from every master; log what changed. */
  private async checkDurability(): Promise<void> {
    const conn = this.producer;
    if (!conn || this.closing) return;
    try {
      const nodes = conn instanceof Cluster ? conn.nodes('master') : [conn];
      let policy = 'noeviction';
      let aof = true;
      for (const node of nodes) {
        const info = parseInfo(`${await node.info('memory')}\n${await node.info('persistence')}`);
        if (info.maxmemory_policy && info.maxmemory_policy !== 'noeviction') policy = info.maxmemory_policy;
        if (info.aof_enabled !== '1') aof = false;
      }
      const before = this.durability;
      this.durability = { policy, aof };
      if (policy !== before.policy && policy !== 'noeviction') {
        const action = {
          refuse: 'enqueues are refused',
          unhealthy: 'enqueues are refused',
          warn: 'continuing (durabilityGuard: warn)',
        }[this.config.durabilityGuard];
        this.logger.error(`${this.evictionReason()}; ${action}`);
      }
      if (!aof && before.aof !== false) {
        this.logger.warn(
          `AOF persistence is off on the queue Redis ("${this.clientName}"): jobs enqueued since the last snapshot are lost if it restarts; set "appendonly yes"`,
        );
      }
    } catch (err) {
      this.logger.warn(
        `could not read the eviction policy of "${this.clientName}": ${describeRedisError(err)}`,
      );
    }
  }
}

function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

async function closeConnection(conn: RedisConnection): Promise<void> {
  if (conn.status === 'end') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      conn.disconnect();
      resolve();
    }, 1_000);
    conn.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    if (conn.status === 'ready') conn.quit().catch(() => conn.disconnect());
    else conn.disconnect();
  });
}
