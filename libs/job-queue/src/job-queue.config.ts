import { layerOptions, OptionChecker, type EnvOption, type OptionBag } from '@redwing/redis';
import type { RateLimiterOptions } from 'bullmq';
import { JOB_QUEUE_DEFAULTS, QUEUE_NAME_PATTERN } from './job-queue.constants';
import { JobQueueConfigError } from './job-queue.errors';
import type {
  DurabilityGuardMode,
  JobBackoffOptions,
  JobQueueModuleOptions,
  JobQueueRole,
  JobQueueSharedOptions,
  JobRetentionOptions,
  JobWorkerOptions,
  RegisterQueueOptions,
} from './job-queue.interfaces';

/** Settings of one queue after defaults and validation. */
export interface ResolvedQueueConfig {
  name: string;
  attempts: number;
  backoff: Required<JobBackoffOptions>;
  completedRetention: JobRetentionOptions;
  failedRetention: JobRetentionOptions;
  worker: Required<JobWorkerOptions>;
  limiter?: RateLimiterOptions;
}

/** The module options after environment, defaults and validation. */
export interface ResolvedJobQueueConfig {
  client?: string;
  role: JobQueueRole;
  prefix?: string;
  idempotencyWindow: number;
  drainTimeout: number;
  enqueueTimeout: number;
  durabilityGuard: DurabilityGuardMode;
  shared: Omit<ResolvedQueueConfig, 'name' | 'limiter'>;
}

const check = new OptionChecker((field, message) => new JobQueueConfigError(field, message));

const SHARED_KEYS = ['attempts', 'backoff', 'completedRetention', 'failedRetention', 'worker'] as const;
const MODULE_KEYS = [
  ...SHARED_KEYS,
  'client',
  'role',
  'prefix',
  'idempotencyWindow',
  'drainTimeout',
  'enqueueTimeout',
  'durabilityGuard',
  'useEnv',
];
const QUEUE_KEYS = [...SHARED_KEYS, 'name', 'limiter'];
const ROLES: readonly JobQueueRole[] = ['worker', 'producer'];
const GUARDS: readonly DurabilityGuardMode[] = ['refuse', 'unhealthy', 'warn'];
const DAY = 86_400_000;

/** Environment variables the module reads (unless `useEnv: false`). */
export const JOB_QUEUE_ENV_VARS: readonly EnvOption[] = [
  { name: 'JOB_QUEUE_ROLE', field: 'role', kind: 'string' },
  { name: 'JOB_QUEUE_CLIENT', field: 'client', kind: 'string' },
  { name: 'JOB_QUEUE_ATTEMPTS', field: 'attempts', kind: 'int', range: { min: 1, max: 1_000 } },
  {
    name: 'JOB_QUEUE_DRAIN_TIMEOUT',
    field: 'drainTimeout',
    kind: 'int',
    range: { min: 0, max: 3_600_000, unit: 'ms' },
  },
  {
    name: 'JOB_QUEUE_IDEMPOTENCY_WINDOW',
    field: 'idempotencyWindow',
    kind: 'int',
    range: { min: 1_000, max: 30 * DAY, unit: 'ms' },
  },
  { name: 'JOB_QUEUE_DURABILITY_GUARD', field: 'durabilityGuard', kind: 'string' },
];

/**
 * Layer the environment (unless `useEnv: false`), the defaults and the explicit options, and validate.
 * @throws JobQueueConfigError naming the field
 */
export function resolveJobQueueConfig(
  options: JobQueueModuleOptions = {},
  env: Readonly<Record<string, unknown>> = process.env,
): ResolvedJobQueueConfig {
  const explicit = check.object(options ?? {}, 'options');
  check.keys(explicit, MODULE_KEYS, '', 'the @redwing/job-queue README');
  const useEnv = check.bool(explicit.useEnv, 'useEnv') ?? true;
  const fromEnv: OptionBag = useEnv ? check.env(env, JOB_QUEUE_ENV_VARS) : {};
  const o = layerOptions<JobQueueModuleOptions>(fromEnv, explicit);
  return {
    client: check.string(o.client, 'client', { nonEmpty: true }),
    role: check.oneOf(o.role, 'role', ROLES) ?? JOB_QUEUE_DEFAULTS.role,
    prefix: check.string(o.prefix, 'prefix', {
      pattern: /^[^{}\s]{1,100}$/,
      hint: '1–100 characters without braces or spaces (the queue name is the hash tag)',
    }),
    idempotencyWindow:
      check.duration(o.idempotencyWindow, 'idempotencyWindow', { min: 1_000, max: 30 * DAY }) ??
      JOB_QUEUE_DEFAULTS.idempotencyWindow,
    drainTimeout:
      check.duration(o.drainTimeout, 'drainTimeout', { min: 0, max: 3_600_000 }) ??
      JOB_QUEUE_DEFAULTS.drainTimeout,
    enqueueTimeout:
      check.duration(o.enqueueTimeout, 'enqueueTimeout', { min: 10, max: 600_000 }) ??
      JOB_QUEUE_DEFAULTS.enqueueTimeout,
    durabilityGuard:
      check.oneOf(o.durabilityGuard, 'durabilityGuard', GUARDS) ?? JOB_QUEUE_DEFAULTS.durabilityGuard,
    shared: resolveShared(o as JobQueueSharedOptions & OptionBag, '', undefined),
  };
}

/**
 * A queue's settings: its own options over the module's.
 * @throws JobQueueConfigError naming the field (prefixed `registerQueue(<name>).`)
 */
export function resolveQueueConfig(
  root: ResolvedJobQueueConfig,
  options: RegisterQueueOptions,
): ResolvedQueueConfig {
  const o = check.object(options, 'registerQueue(options)', '{ name: string, … }') as RegisterQueueOptions &
    OptionBag;
  const name = check.string(o.name, 'registerQueue().name', {
    pattern: QUEUE_NAME_PATTERN,
    hint: '1–64 of A-Z a-z 0-9 _ . - (no ":" or braces)',
  });
  if (name === undefined) throw check.fail('registerQueue().name', 'is required');
  const at = `registerQueue(${name}).`;
  check.keys(o, QUEUE_KEYS, at, 'the @redwing/job-queue README');
  let limiter: RateLimiterOptions | undefined;
  const lim = check.optionalObject(o.limiter, `${at}limiter`, '{ max, duration }');
  if (lim) {
    check.keys(lim, ['max', 'duration'], `${at}limiter.`);
    const max = check.int(lim.max, `${at}limiter.max`, { min: 1, max: 1_000_000 });
    const duration = check.duration(lim.duration, `${at}limiter.duration`);
    if (max === undefined || duration === undefined)
      throw check.fail(`${at}limiter`, 'needs both max and duration');
    limiter = { max, duration };
  }
  return { name, ...resolveShared(o, at, root.shared), limiter };
}

function resolveShared(
  o: JobQueueSharedOptions & OptionBag,
  at: string,
  base: ResolvedJobQueueConfig['shared'] | undefined,
): ResolvedJobQueueConfig['shared'] {
  const d = JOB_QUEUE_DEFAULTS;
  const b = check.optionalObject(o.backoff, `${at}backoff`) ?? {};
  check.keys(b, ['type', 'delay', 'jitter'], `${at}backoff.`);
  const w = check.optionalObject(o.worker, `${at}worker`) ?? {};
  check.keys(w, ['lockDuration', 'stalledInterval', 'maxStalledCount'], `${at}worker.`);
  const baseBackoff = base?.backoff ?? d.backoff;
  const baseWorker = base?.worker ?? {
    lockDuration: d.lockDuration,
    stalledInterval: d.stalledInterval,
    maxStalledCount: d.maxStalledCount,
  };
  return {
    attempts: check.int(o.attempts, `${at}attempts`, { min: 1, max: 1_000 }) ?? base?.attempts ?? d.attempts,
    backoff: {
      type: check.oneOf(b.type, `${at}backoff.type`, ['exponential', 'fixed'] as const) ?? baseBackoff.type,
      delay: check.duration(b.delay, `${at}backoff.delay`, { min: 0 }) ?? baseBackoff.delay,
      jitter: check.number(b.jitter, `${at}backoff.jitter`, { min: 0, max: 1 }) ?? baseBackoff.jitter,
    },
    completedRetention: retention(o.completedRetention, `${at}completedRetention`) ??
      base?.completedRetention ?? { ...d.completedRetention },
    failedRetention: retention(o.failedRetention, `${at}failedRetention`) ??
      base?.failedRetention ?? { ...d.failedRetention },
    worker: {
      lockDuration:
        check.duration(w.lockDuration, `${at}worker.lockDuration`, { min: 100 }) ?? baseWorker.lockDuration,
      stalledInterval:
        check.duration(w.stalledInterval, `${at}worker.stalledInterval`, { min: 50 }) ??
        baseWorker.stalledInterval,
      maxStalledCount:
        check.int(w.maxStalledCount, `${at}worker.maxStalledCount`, { min: 0, max: 100 }) ??
        baseWorker.maxStalledCount,
    },
  };
}

function retention(value: unknown, field: string): JobRetentionOptions | undefined {
  const r = check.optionalObject(value, field, '{ age?, count? }');
  if (!r) return undefined;
  check.keys(r, ['age', 'count'], `${field}.`);
  const out: JobRetentionOptions = {};
  const age = check.duration(r.age, `${field}.age`, { min: 1_000, max: 365 * DAY });
  const count = check.int(r.count, `${field}.count`, { min: 0, max: 100_000_000 });
  if (age !== undefined) out.age = age;
  if (count !== undefined) out.count = count;
  return out;
}

/**
 * Validate `@Processor()` options of `cls`.
 * @throws JobQueueConfigError naming `@Processor(<Class>)`
 */
export function resolveProcessorOptions(
  raw: unknown,
  className: string,
): { queue: string; concurrency: number } {
  const at = `@Processor(${className})`;
  const o =
    typeof raw === 'string'
      ? { queue: raw }
      : check.object(raw, at, 'a queue name or { queue, concurrency }');
  check.keys(o, ['queue', 'concurrency'], `${at}.`);
  const queue = check.string(o.queue, `${at}.queue`, {
    pattern: QUEUE_NAME_PATTERN,
    hint: 'a registered queue name',
  });
  if (queue === undefined) throw check.fail(`${at}.queue`, 'is required');
  const concurrency =
    check.int(o.concurrency, `${at}.concurrency`, { min: 1, max: 10_000 }) ?? JOB_QUEUE_DEFAULTS.concurrency;
  return { queue, concurrency };
}

/** The config error for a processor problem found while wiring (unknown queue, duplicate handler). */
export function processorError(field: string, message: string): JobQueueConfigError {
  return new JobQueueConfigError(field, message);
}
