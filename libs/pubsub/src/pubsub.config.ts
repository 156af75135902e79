import { layerOptions, OptionChecker, type EnvOption } from '@redwing/redis';
import { PubSubConfigError } from './pubsub.errors';
import type { PubSubModuleOptions } from './pubsub.interfaces';

/** The module options after defaults, environment and validation. */
export interface ResolvedPubSubConfig {
  client: string;
  maxPayloadSize: number;
  retention: { maxEvents: number; maxAge: number };
  offlineBuffer: { maxEvents: number; retryInterval: number };
  readBatch: number;
}

const DEFAULTS: ResolvedPubSubConfig = {
  client: 'default',
  maxPayloadSize: 65_536,
  retention: { maxEvents: 1_000, maxAge: 600_000 },
  offlineBuffer: { maxEvents: 1_000, retryInterval: 500 },
  readBatch: 500,
};

const RANGES = {
  maxPayloadSize: { min: 64, max: 16_777_216, unit: 'bytes' },
  maxEvents: { min: 10, max: 10_000_000 },
  maxAge: { min: 1_000, max: 30 * 86_400_000, unit: 'ms' },
  bufferEvents: { min: 0, max: 1_000_000 },
  retryInterval: { min: 10, max: 60_000, unit: 'ms' },
  readBatch: { min: 10, max: 10_000 },
} as const;

/** `PUBSUB_*` variables and the options they set (under explicit options). */
export const PUBSUB_ENV_VARS: readonly EnvOption[] = [
  {
    name: 'PUBSUB_CLIENT',
    field: 'client',
    kind: 'string',
    description: 'Redis client name',
    default: '`default`',
  },
  {
    name: 'PUBSUB_MAX_PAYLOAD_SIZE',
    field: 'maxPayloadSize',
    kind: 'int',
    range: RANGES.maxPayloadSize,
    default: '65536',
  },
  {
    name: 'PUBSUB_RETENTION_MAX_EVENTS',
    field: 'retention.maxEvents',
    kind: 'int',
    range: RANGES.maxEvents,
    default: '1000',
  },
  {
    name: 'PUBSUB_RETENTION_MAX_AGE',
    field: 'retention.maxAge',
    kind: 'int',
    range: RANGES.maxAge,
    default: '600000',
  },
  {
    name: 'PUBSUB_OFFLINE_BUFFER',
    field: 'offlineBuffer.maxEvents',
    kind: 'int',
    range: RANGES.bufferEvents,
    default: '1000',
  },
];

const check = new OptionChecker((field, message) => new PubSubConfigError(field, message));

/**
 * Apply environment and defaults to the module options and validate them.
 * @throws PubSubConfigError naming the field (or variable) and what is allowed
 */
export function resolvePubSubConfig(
  options: PubSubModuleOptions = {},
  env: Readonly<Record<string, unknown>> = process.env,
): ResolvedPubSubConfig {
  const o = check.object(options ?? {}, 'options');
  check.keys(o, ['client', 'useEnv', 'maxPayloadSize', 'retention', 'offlineBuffer', 'readBatch'], '');
  const useEnv = check.bool(o.useEnv, 'useEnv') ?? true;
  const fromEnv = useEnv ? check.env(env, PUBSUB_ENV_VARS) : {};
  const explicit = { ...o };
  delete explicit.useEnv;
  const merged = layerOptions(DEFAULTS as unknown as Record<string, unknown>, fromEnv, explicit) as Record<
    string,
    unknown
  >;
  const retention = check.object(merged.retention, 'retention');
  check.keys(retention, ['maxEvents', 'maxAge'], 'retention.');
  const buffer = check.object(merged.offlineBuffer, 'offlineBuffer');
  check.keys(buffer, ['maxEvents', 'retryInterval'], 'offlineBuffer.');
  return {
    client: check.string(merged.client, 'client', {
      pattern: /^[A-Za-z0-9_-]{1,64}$/,
      hint: 'a client name',
    })!,
    maxPayloadSize: check.int(merged.maxPayloadSize, 'maxPayloadSize', RANGES.maxPayloadSize)!,
    retention: {
      maxEvents: check.int(retention.maxEvents, 'retention.maxEvents', RANGES.maxEvents)!,
      maxAge: check.duration(retention.maxAge, 'retention.maxAge', RANGES.maxAge)!,
    },
    offlineBuffer: {
      maxEvents: check.int(buffer.maxEvents, 'offlineBuffer.maxEvents', RANGES.bufferEvents)!,
      retryInterval: check.duration(
        buffer.retryInterval,
        'offlineBuffer.retryInterval',
        RANGES.retryInterval,
      )!,
    },
    readBatch: check.int(merged.readBatch, 'readBatch', RANGES.readBatch)!,
  };
}
