import type { RateLimitModuleOptions } from '@redwing/rate-limit';
import { GatewayConfigError } from '../config/gateway-env.schema';

/** The gateway's rate-limit variables (besides `RATE_LIMIT_BOARDS`, which the gateway schema validates). */
export const RATE_LIMIT_ENV_VARS = [
  'RATE_LIMIT_TRUST_PROXY_HOPS',
  'RATE_LIMIT_INSTANCES',
  'RATE_LIMIT_IPV6_PREFIX',
  'RATE_LIMIT_SHADOW',
  'RATE_LIMIT_LEGACY_HEADERS',
] as const;

function integer(
  env: Record<string, string | undefined>,
  name: string,
  min: number,
  max: number,
  fallback: number,
  hint: string,
  problems: string[],
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    problems.push(`"${name}" must be an integer from ${min} to ${max} (${hint})`);
    return fallback;
  }
  return value;
}

function boolean(env: Record<string, string | undefined>, name: string, problems: string[]): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return false;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  problems.push(`"${name}" must be true or false`);
  return false;
}

/**
 * Rate-limit options of the gateway from its environment. Every problem is reported at once, naming the
 * variable; values are never echoed.
 * @throws GatewayConfigError
 */
export function rateLimitOptionsFromEnv(
  env: Record<string, string | undefined>,
  boardsPerMinute: number,
): RateLimitModuleOptions {
  const problems: string[] = [];
  const hops = env.RATE_LIMIT_TRUST_PROXY_HOPS?.trim().toLowerCase();
  if (hops === 'true' || hops === '*' || hops === 'all') {
    problems.push(
      '"RATE_LIMIT_TRUST_PROXY_HOPS" must be the number of reverse proxies in front of the gateway (0 = none); ' +
        '"trust every proxy" is refused because any client could then pick its own address with X-Forwarded-For',
    );
  }
  const options: RateLimitModuleOptions = {
    // Only decorated routes: health checks, /metrics and the other features' routes stay unlimited.
    limitAllRoutes: false,
    trustProxy: problems.length
      ? 0
      : integer(
          env,
          'RATE_LIMIT_TRUST_PROXY_HOPS',
          0,
          32,
          0,
          'proxies that append to X-Forwarded-For',
          problems,
        ),
    instances: integer(
      env,
      'RATE_LIMIT_INSTANCES',
      1,
      10_000,
      1,
      'gateway instances sharing Redis',
      problems,
    ),
    ipv6Prefix: integer(
      env,
      'RATE_LIMIT_IPV6_PREFIX',
      1,
      128,
      56,
      'prefix length IPv6 clients are grouped by',
      problems,
    ),
    shadow: boolean(env, 'RATE_LIMIT_SHADOW', problems),
    legacyHeaders: boolean(env, 'RATE_LIMIT_LEGACY_HEADERS', problems),
    policies: { boards: { points: boardsPerMinute, duration: 60_000, key: 'ip' } },
  };
  if (problems.length) throw new GatewayConfigError(problems);
  return options;
}
