import { describeValue } from '../config-kit';
import type { RedisClusterNode, RedisTlsOptions } from '../redis.interfaces';
import { check, ConfigProblem, LIMITS, type LimitKey, type Obj } from './config-problem';
import { checkHost, nodeList, parseRedisUrl, SEE_ALSO, type UrlParts } from './redis-address';

/** Maps an option path (`breaker.window`) to the field name errors show. @internal */
export type Label = (path: string) => string;

/** A value and the option (or variable) that set it, for error messages. @internal */
export interface Sourced<T> {
  value: T;
  field: string;
}

// prettier-ignore
/** The option sections and their keys. @internal */
export const SECTIONS = {
  breaker: ['enabled', 'failureRateThreshold', 'slowCallRateThreshold', 'slowCallDuration', 'window', 'minimumVolume',
    'resetTimeout', 'resetJitter', 'maxHalfOpenTime'],
  healthCheck: ['interval', 'timeout', 'sampleSize', 'reconnectAfter'],
  pool: ['minSize', 'maxSize', 'acquireTimeout', 'idleTimeout', 'reapInterval', 'validateAfterIdle'],
  fallback: ['enabled', 'maxEntries', 'maxBytes'],
} as const;
/** @internal */
export type Section = keyof typeof SECTIONS;

const SCALARS = ['connectTimeout', 'commandTimeout', 'maxRetries', 'maxReconnectDelay'] as const;
type Scalar = (typeof SCALARS)[number];

// prettier-ignore
/** Options of one client. @internal */
export const CLIENT_KEYS = ['url', 'host', 'port', 'username', 'password', 'db', 'tls', 'sentinels', 'name', 'sentinelUsername',
  'sentinelPassword', 'cluster', 'connectTimeout', 'commandTimeout', 'maxRetries', 'maxReconnectDelay', 'breaker',
  'healthCheck', 'pool', 'fallback', 'redisOptions'];
/** Options set once, at the top level. @internal */
export const MODULE_ONLY_KEYS = ['clients', 'keyPrefix', 'useEnv', 'env', 'requestBudget'];
/** Top-level options. `isGlobal` is the ConfigurableModuleBuilder extra, tolerated in case it is not stripped. @internal */
export const MODULE_KEYS = [...CLIENT_KEYS, ...MODULE_ONLY_KEYS, 'isGlobal'];
/** @internal */
export const TLS_KEYS = ['ca', 'cert', 'key', 'servername', 'rejectUnauthorized'];
const CLUSTER_KEYS = ['nodes', 'options'];
const KEY_PREFIX = /^[A-Za-z0-9_.-]{1,64}$/;

/** One layer of settings (the explicit options of a client, or the environment), validated. @internal */
export interface Layer {
  label: Label;
  host?: Sourced<string>;
  port?: Sourced<number>;
  username?: Sourced<string>;
  password?: Sourced<string>;
  db?: Sourced<number>;
  tlsOn?: boolean;
  tls: RedisTlsOptions;
  sentinels?: RedisClusterNode[];
  name?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  cluster?: { nodes: RedisClusterNode[]; options: Obj };
  scalars: Partial<Record<Scalar, number>>;
  sections: { [S in Section]: Obj };
  redisOptions?: Obj;
}

/** Validates one client's options (or the environment's) into a layer. Field names come from `label`. @internal */
export function checkClient(raw: Obj, label: Label): Layer {
  const layer: Layer = {
    label,
    tls: {},
    scalars: {},
    sections: { breaker: {}, healthCheck: {}, pool: {}, fallback: {} },
  };

  let url: UrlParts | undefined;
  if (raw.url !== undefined) url = parseRedisUrl(raw.url, label('url'));
  const fromUrl = <T>(value: T | undefined): Sourced<T> | undefined =>
    value === undefined ? undefined : { value, field: label('url') };
  const own = <T>(value: T | undefined, key: string): Sourced<T> | undefined =>
    value === undefined ? undefined : { value, field: label(key) };

  layer.host = own(checkHost(raw.host, label('host')), 'host') ?? fromUrl(url?.host);
  layer.port = own(check.int(raw.port, label('port'), LIMITS.port), 'port') ?? fromUrl(url?.port);
  layer.db = own(check.int(raw.db, label('db'), LIMITS.db), 'db') ?? fromUrl(url?.db);
  layer.username = own(check.string(raw.username, label('username')), 'username') ?? fromUrl(url?.username);
  layer.password = own(check.string(raw.password, label('password')), 'password') ?? fromUrl(url?.password);

  if (raw.tls !== undefined) checkTls(raw.tls, label, layer);
  layer.tlsOn = raw.tls !== undefined ? true : url?.tls;

  if (raw.sentinels !== undefined) layer.sentinels = nodeList(raw.sentinels, label('sentinels'));
  layer.name = check.string(raw.name, label('name')) || undefined;
  layer.sentinelUsername = check.string(raw.sentinelUsername, label('sentinelUsername'));
  layer.sentinelPassword = check.string(raw.sentinelPassword, label('sentinelPassword'));

  if (raw.cluster !== undefined) layer.cluster = checkCluster(raw.cluster, label, layer);

  for (const key of SCALARS) layer.scalars[key] = check.int(raw[key], label(key), LIMITS[key]);

  for (const s of Object.keys(SECTIONS) as Section[]) {
    if (raw[s] === undefined) continue;
    const section = check.object(raw[s], label(s), `an object of ${s} options`);
    check.keys(section, SECTIONS[s], label(s) + '.', SEE_ALSO);
    for (const key of SECTIONS[s]) {
      const path = `${s}.${key}`;
      layer.sections[s][key] =
        key === 'enabled'
          ? check.bool(section[key], label(path))
          : path === 'breaker.resetJitter'
            ? check.number(section[key], label(path), LIMITS['breaker.resetJitter'])
            : check.int(section[key], label(path), LIMITS[path as LimitKey]);
    }
  }

  if (raw.redisOptions !== undefined) {
    layer.redisOptions = check.object(
      raw.redisOptions,
      label('redisOptions'),
      'an object of ioredis options',
    );
  }
  return layer;
}

function checkTls(value: unknown, label: Label, layer: Layer): void {
  const tls = check.object(value, label('tls'), 'an object ({} for TLS with the system CAs)');
  check.keys(tls, TLS_KEYS, label('tls') + '.', SEE_ALSO);
  for (const key of ['ca', 'cert', 'key'] as const) {
    const pem = tls[key];
    if (pem === undefined) continue;
    if (typeof pem !== 'string' && !(pem instanceof Uint8Array)) {
      throw new ConfigProblem(
        label(`tls.${key}`),
        `must be PEM text (a string or Buffer); got ${describeValue(pem)}`,
      );
    }
    layer.tls[key] = pem as string | Buffer;
  }
  const servername = check.string(tls.servername, label('tls.servername'));
  if (servername !== undefined) layer.tls.servername = servername;
  const reject = check.bool(tls.rejectUnauthorized, label('tls.rejectUnauthorized'));
  if (reject !== undefined) layer.tls.rejectUnauthorized = reject;
}

function checkCluster(value: unknown, label: Label, layer: Layer): NonNullable<Layer['cluster']> {
  const cluster = check.object(value, label('cluster'), 'an object: { nodes: ["host:port", …] }');
  check.keys(cluster, CLUSTER_KEYS, label('cluster') + '.', SEE_ALSO);
  if (cluster.nodes === undefined) {
    throw new ConfigProblem(label('cluster.nodes'), 'is required: list at least one seed node ("host:port")');
  }
  const nodes = nodeList(cluster.nodes, label('cluster.nodes'));
  let options: Obj = {};
  if (cluster.options !== undefined) {
    options = check.object(cluster.options, label('cluster.options'), 'an object of ioredis ClusterOptions');
    if (options.redisOptions !== undefined) {
      throw new ConfigProblem(
        label('cluster.options.redisOptions'),
        'is not supported: put per-node ioredis options in redisOptions',
      );
    }
  }
  if (layer.sentinels) {
    throw new ConfigProblem(label('cluster'), 'cannot be combined with sentinels: choose one topology');
  }
  return { nodes, options };
}

/**
 * Unknown keys of the top level or a named client: a module-only key in a client says where it belongs;
 * anything else gets the kit's "did you mean". @internal
 */
export function rejectUnknownKeys(obj: Obj, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    if (MODULE_ONLY_KEYS.includes(key)) {
      throw new ConfigProblem(
        prefix + key,
        'is an unknown option here: it is set once, at the top level of the module options',
      );
    }
    check.keys(obj, known, prefix, SEE_ALSO); // throws for `key`, the first unknown one
  }
}

/** The key prefix: 1–64 of letters, digits, `_`, `.`, `-`. @internal */
export function checkKeyPrefix(value: unknown, field: string): string | undefined {
  const hint = '1–64 letters, digits, _, . or - (it starts every Redis key Redwing writes)';
  if (value !== undefined && typeof value !== 'string') throw new ConfigProblem(field, `must be ${hint}`);
  return check.string(value, field, { pattern: KEY_PREFIX, hint });
}
