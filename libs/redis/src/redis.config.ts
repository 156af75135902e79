import type { ClusterOptions, RedisOptions } from 'ioredis';
import { quoteValue } from './config-kit';
import {
  checkClient,
  checkKeyPrefix,
  CLIENT_KEYS,
  MODULE_KEYS,
  rejectUnknownKeys,
  TLS_KEYS,
  type Layer,
} from './config/client-layer';
import { first, resolveSettings, type ClientSettings } from './config/client-settings';
import { check, ConfigProblem, type Obj } from './config/config-problem';
import { encode, hostPort, isLoopbackHost } from './config/redis-address';
import { readEnvLayer, type RedisEnvOptions } from './config/redis-env';
import { collectSecrets, toConfigError } from './config/redis-secrets';
import { DEFAULT_CLIENT } from './redis.constants';
import type { RedisClientModuleOptions, RedisTopology } from './redis.interfaces';

export { isLoopbackHost } from './config/redis-address';
export { REDIS_ENV_VARS, type RedisEnvOptions } from './config/redis-env';
export type {
  ResolvedBreakerOptions,
  ResolvedFallbackOptions,
  ResolvedHealthCheckOptions,
  ResolvedPoolOptions,
} from './config/client-settings';

/** One client's settings after defaults, environment and validation: everything the client needs. */
export interface ResolvedRedisClientConfig extends ClientSettings {
  name: string;
  /** `cluster` if `cluster` is set, `sentinel` if `sentinels` is set, else `standalone`. */
  topology: RedisTopology;
  /** The address with the password replaced by `***`; safe to log and report. */
  displayUrl: string;
  /** Every password of this client, so log lines can be scrubbed with `redactText`. */
  secrets: string[];
  /**
   * ioredis options for standalone and Sentinel (`new Redis(redisOptions)`). For Cluster, the per-node
   * options (the same object as `cluster.options.redisOptions`).
   */
  redisOptions: RedisOptions;
  /** Cluster only: `new Cluster(cluster.nodes, cluster.options)`. */
  cluster?: { nodes: Array<{ host: string; port: number }>; options: ClusterOptions };
  /** A host is not loopback and TLS is off: the client logs an audit warning. */
  insecureRemote: boolean;
}

/** The module options resolved: the key prefix and one config per client. */
export interface ResolvedRedisModuleConfig {
  /** First segment of every key Redwing libs write. */
  keyPrefix: string;
  /** Every HTTP request runs in a Redis budget scope (one Redis wait per request). */
  requestBudget: boolean;
  /** `default` first, then the named clients in the order given. */
  clients: ResolvedRedisClientConfig[];
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 6379;
const CLIENT_NAME = /^[A-Za-z0-9_-]{1,32}$/;
/** ioredis fields this module owns: a user's `redisOptions` cannot set them. */
// prettier-ignore
const OWNED_CONNECTION_KEYS = ['host', 'port', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'sentinelUsername',
  'sentinelPassword', 'enableTLSForSentinelMode'];
/** Not allowed in `ClusterOptions.redisOptions`: ioredis sets them per node itself, or they make no sense there. */
// prettier-ignore
const CLUSTER_NODE_FORBIDDEN = ['host', 'port', 'path', 'sentinels', 'retryStrategy', 'enableOfflineQueue', 'readOnly',
  'himportFieldsets', 'lazyConnect', 'db', 'name', 'sentinelUsername', 'sentinelPassword', 'enableTLSForSentinelMode'];

/**
 * Resolves the module options (explicit options > `REDIS_*` environment > defaults) into one validated
 * config per client, `default` first.
 * @throws RedisConfigError naming the option (e.g. `clients.cache.commandTimeout`) or variable and the fix;
 * never any other error, and never with a password in it.
 */
export function resolveRedisConfig(options: RedisClientModuleOptions): ResolvedRedisModuleConfig {
  const secrets = collectSecrets(options);
  try {
    return resolve(options);
  } catch (err) {
    throw toConfigError(err, secrets);
  }
}

/**
 * Reads the `REDIS_*` variables (see `REDIS_ENV_VARS`) into options; unset or empty variables are left
 * out. TLS file variables are read from disk.
 * @throws RedisConfigError naming the variable.
 */
export function readRedisEnv(env: Record<string, string | undefined>): RedisEnvOptions {
  const secrets = collectSecrets({ useEnv: true, env });
  try {
    return readEnvLayer(env).raw;
  } catch (err) {
    throw toConfigError(err, secrets);
  }
}

/**
 * Reconnect delay for attempt `times` (1, 2, …): 50·2^times ms, ±20 % jitter, at most `maxReconnectDelay`.
 * Never `null`: the client always reconnects.
 */
export function reconnectDelay(
  times: number,
  maxReconnectDelay: number,
  random: () => number = Math.random,
): number {
  const attempt = Number.isFinite(times) && times > 0 ? Math.min(times, 32) : 1;
  const base = Math.min(50 * 2 ** attempt, maxReconnectDelay);
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  return Math.max(1, Math.min(maxReconnectDelay, jittered));
}

function resolve(options: unknown): ResolvedRedisModuleConfig {
  const top = check.object(options, 'options', 'an object ({} for all defaults)');
  rejectUnknownKeys(top, MODULE_KEYS, '');
  const useEnv = check.bool(top.useEnv, 'useEnv') ?? true;
  let envLayer: Layer | undefined;
  let envPrefix: string | undefined;
  if (useEnv) {
    const env = readEnvLayer(top.env === undefined ? process.env : top.env, 'env');
    envLayer = env.layer;
    envPrefix = env.raw.keyPrefix;
  }
  const keyPrefix = checkKeyPrefix(top.keyPrefix, 'keyPrefix') ?? envPrefix ?? 'redwing';
  const requestBudget = check.bool(top.requestBudget, 'requestBudget') ?? true;
  const explicit = checkClient(top, (p) => p);
  const topLayers = envLayer ? [explicit, envLayer] : [explicit];
  const clients = [
    buildClient({ name: DEFAULT_CLIENT, prefix: '', connLayers: topLayers, settingLayers: topLayers }),
  ];

  if (top.clients !== undefined) {
    const named = check.object(top.clients, 'clients', 'an object of named client options');
    for (const name of Object.keys(named)) {
      if (!CLIENT_NAME.test(name)) {
        throw new ConfigProblem(
          'clients',
          `has an invalid client name ${quoteValue(name)}: use 1–32 letters, digits, _ or -`,
        );
      }
      const prefix = `clients.${name}.`;
      if (name === DEFAULT_CLIENT) {
        throw new ConfigProblem(
          `clients.${name}`,
          'is reserved: put the default client options at the top level',
        );
      }
      const raw = check.object(named[name], `clients.${name}`, 'an object of client options');
      rejectUnknownKeys(raw, CLIENT_KEYS, prefix);
      const layer = checkClient(raw, (p) => prefix + p);
      clients.push(buildClient({ name, prefix, connLayers: [layer], settingLayers: [layer, ...topLayers] }));
    }
  }
  return { keyPrefix, requestBudget, clients };
}

interface ClientSource {
  name: string;
  /** Starts the field of an error: `''` or `clients.<name>.`. */
  prefix: string;
  /** Where the connection (address, credentials, TLS, topology) comes from, first wins. */
  connLayers: Layer[];
  /** Where timeouts and sections come from, first wins. */
  settingLayers: Layer[];
}

/** One client: connection from `connLayers`, timeouts and sections from `settingLayers`. */
function buildClient({ name, prefix, connLayers, settingLayers }: ClientSource): ResolvedRedisClientConfig {
  const settings = resolveSettings(settingLayers, prefix);
  const { commandTimeout, connectTimeout, maxReconnectDelay } = settings;

  // Connection: field by field, first layer that sets it wins; topology from the first layer that sets one.
  const pick = <K extends 'host' | 'port' | 'username' | 'password' | 'db'>(key: K): Layer[K] =>
    connLayers.find((l) => l[key] !== undefined)?.[key];
  const host = pick('host')?.value ?? DEFAULT_HOST;
  const port = pick('port')?.value ?? DEFAULT_PORT;
  const username = pick('username')?.value || undefined;
  const password = pick('password')?.value || undefined;
  const db = pick('db');
  const tlsOn = first(connLayers.map((l) => l.tlsOn)) ?? false;
  const topoLayer = connLayers.find((l) => l.sentinels || l.cluster);
  const topology: RedisTopology = topoLayer?.cluster
    ? 'cluster'
    : topoLayer?.sentinels
      ? 'sentinel'
      : 'standalone';
  const sentinelName = first(connLayers.map((l) => l.name));
  const sentinelPassword = first(connLayers.map((l) => l.sentinelPassword)) || undefined;
  const sentinelUsername = first(connLayers.map((l) => l.sentinelUsername)) || undefined;

  let tls: RedisOptions['tls'];
  if (tlsOn) {
    tls = {};
    for (const key of TLS_KEYS) {
      const value = first(connLayers.map((l) => (l.tls as Obj)[key]));
      if (value !== undefined) (tls as Obj)[key] = value;
    }
  }

  const retryStrategy = (times: number): number => reconnectDelay(times, maxReconnectDelay);
  const user = connLayers[0].redisOptions ?? {};
  const base: Obj = { ...user };
  for (const key of OWNED_CONNECTION_KEYS) delete base[key];
  if (typeof user.reconnectOnError === 'function') {
    // 2 would re-send the failed command; a sent command is never sent again, so reconnect only.
    const userReconnect = user.reconnectOnError as (err: Error) => boolean | 1 | 2;
    base.reconnectOnError = (err: Error) => {
      const decision = userReconnect(err);
      return decision === 2 ? 1 : decision;
    };
  }
  const redisOptions: RedisOptions = {
    // The ready check (INFO) may be turned off for ACL users without @dangerous; everything below is not
    // negotiable, because fail-fast and no-replay depend on it.
    enableReadyCheck: true,
    ...(base as RedisOptions),
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: null,
    commandTimeout,
    connectTimeout,
    retryStrategy,
  };
  if (username !== undefined) redisOptions.username = username;
  if (password !== undefined) redisOptions.password = password;
  if (tls) redisOptions.tls = tls;

  const secrets = [...new Set([password, sentinelPassword].filter((s): s is string => !!s))];
  const scheme = tlsOn ? 'rediss' : 'redis';
  const userinfo = password ? `${encodeUser(username)}:***@` : username ? `${encodeUser(username)}@` : '';
  const dbValue = db?.value ?? 0;
  const done = (
    finalRedisOptions: RedisOptions,
    where: { displayUrl: string; hosts: string[]; cluster?: ResolvedRedisClientConfig['cluster'] },
  ): ResolvedRedisClientConfig => {
    const resolved: ResolvedRedisClientConfig = {
      name,
      topology,
      displayUrl: where.displayUrl,
      secrets,
      ...settings,
      redisOptions: finalRedisOptions,
      insecureRemote: !tlsOn && where.hosts.some((h) => !isLoopbackHost(h)),
    };
    if (where.cluster) resolved.cluster = where.cluster;
    return resolved;
  };

  if (topology === 'cluster' && topoLayer?.cluster) {
    if (dbValue !== 0 && db) {
      throw new ConfigProblem(
        db.field,
        'is not allowed with cluster: Redis Cluster only has database 0; remove it',
      );
    }
    const nodes = topoLayer.cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
    const nodeOptions: Obj = { ...(redisOptions as Obj) };
    for (const key of CLUSTER_NODE_FORBIDDEN) delete nodeOptions[key];
    const clusterOptions: ClusterOptions = {
      enableReadyCheck: true,
      ...(topoLayer.cluster.options as ClusterOptions),
      enableOfflineQueue: false,
      lazyConnect: true,
      clusterRetryStrategy: (times: number) => reconnectDelay(times, maxReconnectDelay),
      redisOptions: nodeOptions as ClusterOptions['redisOptions'],
    };
    return done(nodeOptions as RedisOptions, {
      displayUrl: `${scheme}://${userinfo}${nodes.map(hostPort).join(',')}`,
      hosts: nodes.map((n) => n.host),
      cluster: { nodes, options: clusterOptions },
    });
  }

  if (topology === 'sentinel' && topoLayer?.sentinels) {
    if (sentinelName === undefined) {
      throw new ConfigProblem(
        topoLayer.label('name'),
        'is required with sentinels: set the Sentinel master group name (e.g. "mymaster")',
      );
    }
    redisOptions.sentinels = topoLayer.sentinels.map((n) => ({ host: n.host, port: n.port }));
    redisOptions.name = sentinelName;
    redisOptions.db = dbValue;
    if (sentinelUsername !== undefined) redisOptions.sentinelUsername = sentinelUsername;
    if (sentinelPassword !== undefined) redisOptions.sentinelPassword = sentinelPassword;
    if (tlsOn) redisOptions.enableTLSForSentinelMode = true;
    return done(redisOptions, {
      displayUrl:
        `${scheme}+sentinel://${userinfo}${topoLayer.sentinels.map(hostPort).join(',')}/${encode(sentinelName)}` +
        (dbValue !== 0 ? `/${dbValue}` : ''),
      hosts: topoLayer.sentinels.map((n) => n.host),
    });
  }

  redisOptions.host = host;
  redisOptions.port = port;
  redisOptions.db = dbValue;
  return done(redisOptions, {
    displayUrl: `${scheme}://${userinfo}${hostPort({ host, port })}${dbValue !== 0 ? `/${dbValue}` : ''}`,
    hosts: [host],
  });
}

function encodeUser(username: string | undefined): string {
  return username ? encode(username) : '';
}
