import { layerOptions, OptionChecker, type EnvOption } from '@redwing/redis';
import { SESSION_DEFAULTS, SESSION_LIMITS } from './session.constants';
import { SessionConfigError } from './session.errors';
import type { SessionModuleOptions } from './session.interfaces';

/** The module options after defaults and validation. */
export interface ResolvedSessionConfig {
  keys: Buffer[];
  client: string;
  idleTimeout: number;
  absoluteTimeout: number;
  touchInterval: number;
  unavailableRetryAfter: number;
  maxValueSize: number;
  cookie: {
    name: string;
    secure: boolean | 'auto';
    sameSite: 'lax' | 'strict' | 'none';
    domain?: string;
    path: string;
  };
  csrf: { enabled: boolean; header: string; exempt: ReadonlySet<string> };
}

/** The `SESSION_*` environment variables (README table). */
export const SESSION_ENV_VARS: readonly EnvOption[] = [
  {
    name: 'SESSION_KEYS',
    field: 'keys',
    kind: 'list',
    description: 'Key ring, newest first, comma-separated (each ≥ 32 bytes)',
  },
  {
    name: 'SESSION_IDLE_TIMEOUT',
    field: 'idleTimeout',
    kind: 'int',
    description: 'Idle timeout, ms',
    default: '1800000',
  },
  {
    name: 'SESSION_ABSOLUTE_TIMEOUT',
    field: 'absoluteTimeout',
    kind: 'int',
    description: 'Absolute timeout, ms',
    default: '43200000',
  },
  {
    name: 'SESSION_TOUCH_INTERVAL',
    field: 'touchInterval',
    kind: 'int',
    description: 'Rolling refresh interval, ms',
    default: '60000',
  },
  {
    name: 'SESSION_COOKIE_NAME',
    field: 'cookie.name',
    kind: 'string',
    description: 'Cookie base name',
    default: '`rwsid`',
  },
  {
    name: 'SESSION_COOKIE_SECURE',
    field: 'cookie.secure',
    kind: 'string',
    description: '`true`, `false` or `auto`',
    default: '`auto`',
  },
];

const TOP_KEYS = [
  'keys',
  'client',
  'idleTimeout',
  'absoluteTimeout',
  'touchInterval',
  'unavailableRetryAfter',
  'maxValueSize',
  'cookie',
  'csrf',
  'useEnv',
  'env',
];
const COOKIE_KEYS = ['name', 'secure', 'sameSite', 'domain', 'path'];
const CSRF_KEYS = ['enabled', 'header', 'exempt'];
const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;

const check = new OptionChecker((field, message) => new SessionConfigError(field, message));

/**
 * Apply the environment and defaults to the module options and validate them.
 * @throws SessionConfigError naming the field and the fix
 */
export function resolveSessionConfig(options: SessionModuleOptions = {}): ResolvedSessionConfig {
  const explicit = check.object(
    options ?? {},
    'options',
    'an object of options, e.g. { keys: [process.env.SESSION_KEY] }',
  );
  check.keys(explicit, TOP_KEYS, '', 'the @redwing/session README');
  const useEnv = check.bool(explicit.useEnv, 'useEnv') ?? true;
  const envLayer = useEnv ? envOptions((explicit.env as SessionModuleOptions['env']) ?? process.env) : {};
  const o = layerOptions<SessionModuleOptions>(envLayer, {
    ...explicit,
    keys: explicit.keys ?? envLayer.keys,
  });
  const idleTimeout =
    check.duration(o.idleTimeout, 'idleTimeout', { min: 100, max: SESSION_LIMITS.maxTimeout }) ??
    SESSION_DEFAULTS.idleTimeout;
  const absoluteTimeout =
    check.duration(o.absoluteTimeout, 'absoluteTimeout', { min: 100, max: SESSION_LIMITS.maxTimeout }) ??
    SESSION_DEFAULTS.absoluteTimeout;
  const touchInterval =
    check.int(o.touchInterval, 'touchInterval', { min: 0, max: SESSION_LIMITS.maxTimeout, unit: 'ms' }) ??
    Math.min(SESSION_DEFAULTS.touchInterval, Math.floor(idleTimeout / 10));
  if (touchInterval >= idleTimeout) {
    throw check.fail(
      'touchInterval',
      `must be smaller than idleTimeout (${idleTimeout} ms); got ${touchInterval}`,
    );
  }
  const cookie = check.optionalObject(o.cookie, 'cookie') ?? {};
  check.keys(cookie, COOKIE_KEYS, 'cookie.');
  const csrf = check.optionalObject(o.csrf, 'csrf') ?? {};
  check.keys(csrf, CSRF_KEYS, 'csrf.');
  const sameSite = check.oneOf(cookie.sameSite, 'cookie.sameSite', ['lax', 'strict', 'none'] as const);
  return {
    keys: resolveKeys(o.keys),
    client: check.string(o.client, 'client', { nonEmpty: true }) ?? SESSION_DEFAULTS.client,
    idleTimeout,
    absoluteTimeout,
    touchInterval,
    unavailableRetryAfter:
      check.duration(o.unavailableRetryAfter, 'unavailableRetryAfter', { min: 1_000, max: 3_600_000 }) ??
      SESSION_DEFAULTS.unavailableRetryAfter,
    maxValueSize:
      check.int(o.maxValueSize, 'maxValueSize', { min: 64, max: 16_777_216, unit: 'bytes' }) ??
      SESSION_DEFAULTS.maxValueSize,
    cookie: {
      name:
        check.string(cookie.name, 'cookie.name', {
          pattern: COOKIE_NAME,
          hint: "1–64 cookie-name characters (letters, digits, !#$%&'*+.^_`|~-)",
        }) ?? SESSION_DEFAULTS.cookieName,
      secure: secureOption(cookie.secure),
      sameSite: sameSite ?? SESSION_DEFAULTS.sameSite,
      domain: check.string(cookie.domain, 'cookie.domain', {
        pattern: /^[A-Za-z0-9.-]{1,253}$/,
        hint: 'a host name',
      }),
      path:
        check.string(cookie.path, 'cookie.path', {
          pattern: /^\/[^;\s]*$/,
          hint: 'a path starting with /',
        }) ?? SESSION_DEFAULTS.path,
    },
    csrf: {
      enabled: check.bool(csrf.enabled, 'csrf.enabled') ?? true,
      header: (
        check.string(csrf.header, 'csrf.header', { pattern: HEADER_NAME, hint: 'a header name' }) ??
        SESSION_DEFAULTS.csrfHeader
      ).toLowerCase(),
      exempt: new Set(
        check.array(csrf.exempt, 'csrf.exempt', (item, field) =>
          String(
            check.string(item, field, { pattern: /^\/[^?#\s]*$/, hint: 'a path starting with / (no query)' }),
          ),
        ) ?? [],
      ),
    },
  };
}

function envOptions(env: Readonly<Record<string, string | undefined>>): SessionModuleOptions {
  const layer = check.env(env, SESSION_ENV_VARS) as SessionModuleOptions & { cookie?: { secure?: unknown } };
  const secure = layer.cookie?.secure;
  if (typeof secure === 'string') {
    const lower = secure.toLowerCase();
    if (!['true', 'false', 'auto'].includes(lower)) {
      throw check.fail('SESSION_COOKIE_SECURE', 'must be true, false or auto');
    }
    layer.cookie!.secure = lower === 'auto' ? 'auto' : lower === 'true';
  }
  return layer;
}

function secureOption(value: unknown): boolean | 'auto' {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === true || value === false) return value;
  throw check.fail('cookie.secure', 'must be true, false or "auto"');
}

function resolveKeys(value: unknown): Buffer[] {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) {
    throw check.fail(
      'keys',
      'is required: give at least one secret of 32+ bytes, newest first, e.g. keys: [process.env.SESSION_KEY] ' +
        '(generate one with `openssl rand -base64 32`), or set SESSION_KEYS',
    );
  }
  const keys = check.array(value, 'keys', (item, field) => {
    if (item === undefined || item === '') {
      throw check.fail(field, 'is empty: the environment variable it comes from is probably not set');
    }
    const bytes =
      typeof item === 'string'
        ? Buffer.from(item, 'utf8')
        : Buffer.isBuffer(item)
          ? item
          : (() => {
              throw check.fail(field, 'must be a string or a Buffer');
            })();
    if (bytes.length < SESSION_LIMITS.minKeyBytes) {
      throw check.fail(
        field,
        `must be at least ${SESSION_LIMITS.minKeyBytes} bytes of secret (got ${bytes.length}); ` +
          'generate one with `openssl rand -base64 32`',
      );
    }
    return Buffer.from(bytes);
  })!;
  const seen = new Set<string>();
  keys.forEach((k, i) => {
    const hex = k.toString('hex');
    if (seen.has(hex)) throw check.fail(`keys[${i}]`, 'repeats an earlier key; remove the duplicate');
    seen.add(hex);
  });
  return keys;
}
