import { layerOptions, OptionChecker, type EnvOption } from '@redwing/redis';
import { LOCK_DEFAULTS, LOCK_LIMITS } from './lock.constants';
import { LockConfigError } from './lock.errors';
import type { AcquireOptions, LockModuleOptions, UsingOptions } from './lock.interfaces';

/** The module options after defaults, environment and validation. */
export interface ResolvedLockConfig {
  clients: string[];
  ttl: number;
  wait: number;
  retryInterval: number;
  driftFactor: number;
}

/** `LOCK_*` environment variables (documented in the lib README). */
export const LOCK_ENV_VARS: readonly EnvOption[] = [
  {
    name: 'LOCK_CLIENTS',
    field: 'clients',
    kind: 'list',
    description: 'Redis clients voting on locks',
    default: 'default',
  },
  { name: 'LOCK_TTL', field: 'ttl', kind: 'int', description: 'lease length, ms', default: '30000' },
  {
    name: 'LOCK_WAIT',
    field: 'wait',
    kind: 'int',
    description: 'default wait of acquire(), ms',
    default: '10000',
  },
  {
    name: 'LOCK_RETRY_INTERVAL',
    field: 'retryInterval',
    kind: 'int',
    description: 'fallback poll cap, ms',
    default: '250',
  },
];

const MODULE_KEYS = ['clients', 'ttl', 'wait', 'retryInterval', 'driftFactor', 'useEnv'];
const CLIENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** The option checker of this lib: every failure is a {@link LockConfigError}. */
export const check = new OptionChecker((field, message) => new LockConfigError(field, message));

/**
 * Apply defaults and `LOCK_*` variables to the module options and validate them.
 * @throws LockConfigError naming the field and the fix
 */
export function resolveLockConfig(
  options: LockModuleOptions = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): ResolvedLockConfig {
  const explicit = check.object(options ?? {}, 'options', 'an object of options, e.g. { ttl: 30_000 }');
  check.keys(explicit, MODULE_KEYS, '', 'the @redwing/lock README');
  const useEnv = check.bool(explicit.useEnv, 'useEnv') ?? true;
  const o = layerOptions<LockModuleOptions>(
    LOCK_DEFAULTS as unknown as LockModuleOptions,
    useEnv ? check.env(env, LOCK_ENV_VARS) : undefined,
    explicit,
  );
  const clients = check.array(o.clients, 'clients', (v, field) =>
    check.string(v, field, {
      pattern: CLIENT_NAME,
      hint: 'a RedisClientModule client name (A-Z a-z 0-9 _ . -)',
    }),
  ) as string[];
  if (clients.length === 0 || clients.length > LOCK_LIMITS.maxClients) {
    throw check.fail(
      'clients',
      `must name 1 to ${LOCK_LIMITS.maxClients} Redis clients; got ${clients.length}`,
    );
  }
  if (new Set(clients).size !== clients.length) throw check.fail('clients', 'must not name a client twice');
  if (clients.length === 2) {
    throw check.fail(
      'clients',
      'must name 1 client, or 3 or more independent masters: with 2, losing either one blocks every lock',
    );
  }
  const ttl = ttlOf(o.ttl, 'ttl');
  return {
    clients,
    ttl,
    wait: waitOf(o.wait, 'wait'),
    retryInterval: check.int(o.retryInterval, 'retryInterval', {
      min: LOCK_LIMITS.minRetryInterval,
      max: LOCK_LIMITS.maxRetryInterval,
      unit: 'ms',
    })!,
    driftFactor: check.number(o.driftFactor, 'driftFactor', { min: 0, max: 0.2 })!,
  };
}

function ttlOf(value: unknown, field: string): number {
  return check.duration(value, field, { min: LOCK_LIMITS.minTtl, max: LOCK_LIMITS.maxTtl })!;
}

function waitOf(value: unknown, field: string): number {
  return check.int(value, field, { min: 0, max: LOCK_LIMITS.maxWait, unit: 'ms' })!;
}

/**
 * Per-call options with module defaults applied.
 * @throws LockConfigError for an out-of-range ttl, wait or extendEvery
 */
export function callOptions(
  options: UsingOptions | undefined,
  config: ResolvedLockConfig,
): { ttl: number; wait: number; extendEvery: number } {
  if (options === undefined) {
    return { ttl: config.ttl, wait: config.wait, extendEvery: Math.max(1, Math.floor(config.ttl / 3)) };
  }
  const o = check.object(options, 'options') as AcquireOptions & UsingOptions;
  const ttl = o.ttl === undefined ? config.ttl : ttlOf(o.ttl, 'ttl');
  const wait = o.wait === undefined ? config.wait : waitOf(o.wait, 'wait');
  const extendEvery =
    check.int(o.extendEvery, 'extendEvery', { min: 1, max: Math.max(1, ttl - 1), unit: 'ms' }) ??
    Math.max(1, Math.floor(ttl / 3));
  return { ttl, wait, extendEvery };
}

/**
 * A resource name: non-empty, at most 512 characters, no braces (they would break the Cluster hash tag).
 * @throws LockConfigError naming the resource rule
 */
export function checkResource(resource: unknown): string {
  if (typeof resource !== 'string' || resource === '' || resource.length > LOCK_LIMITS.maxResourceLength) {
    throw new LockConfigError(
      'resource',
      `must be a string of 1 to ${LOCK_LIMITS.maxResourceLength} characters`,
    );
  }
  if (resource.includes('{') || resource.includes('}')) {
    throw new LockConfigError(
      'resource',
      'must not contain { or } (the key uses a Cluster hash tag around it)',
    );
  }
  return resource;
}
