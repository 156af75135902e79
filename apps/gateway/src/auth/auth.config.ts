import { randomBytes } from 'node:crypto';
import type { SessionModuleOptions } from '@redwing/session';
import { GatewayConfigError } from '../config/gateway-env.schema';

/**
 * Key of the session key ring outside production when `SESSION_KEYS` is unset: well known, so instances
 * started on one machine share sessions. Never used when `NODE_ENV=production`.
 */
export const DEVELOPMENT_SESSION_KEY = 'redwing-development-session-key-not-secret-0123456789';

/** Demo users outside production when `AUTH_DEMO_USERS` is unset. */
export const DEVELOPMENT_DEMO_USERS = 'alice:demo,bob:demo';

/** Whether the gateway runs in production (`NODE_ENV=production`): no development defaults then. */
export function isProduction(env: Record<string, string | undefined>): boolean {
  return env.NODE_ENV?.trim().toLowerCase() === 'production';
}

/** Where the key ring came from, for the start-up log line. */
export type SessionKeySource = 'SESSION_KEYS' | 'development default' | 'random per process';

/**
 * The gateway's session options: the key ring from `SESSION_KEYS` (the lib reads it and the other
 * `SESSION_*` variables); without it, a well-known development key outside production, or a random key per
 * process in production (sessions then end at a restart and are not shared between instances — set
 * `SESSION_KEYS`). Login is exempt from the CSRF check (it authenticates with the body's credentials and
 * replaces the session the cookie names).
 */
export function sessionOptionsFrom(env: Record<string, string | undefined>): {
  options: SessionModuleOptions;
  source: SessionKeySource;
} {
  const options: SessionModuleOptions = { env, csrf: { exempt: ['/auth/login'] } };
  if (env.SESSION_KEYS?.trim()) return { options, source: 'SESSION_KEYS' };
  if (isProduction(env)) {
    return { options: { ...options, keys: [randomBytes(32)] }, source: 'random per process' };
  }
  return { options: { ...options, keys: [DEVELOPMENT_SESSION_KEY] }, source: 'development default' };
}

/** One demo user as configured. */
export interface DemoUserEntry {
  name: string;
  password: string;
}

const USER_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * Demo users from `AUTH_DEMO_USERS` (`name:password` pairs, comma-separated; a password may contain `:`).
 * Unset: `alice:demo,bob:demo` outside production, nobody in production. Passwords are never echoed.
 * @throws GatewayConfigError naming the variable and the entry's position
 */
export function demoUsersFrom(env: Record<string, string | undefined>): {
  users: DemoUserEntry[];
  source: 'AUTH_DEMO_USERS' | 'development default' | 'none (production)';
} {
  const raw = env.AUTH_DEMO_USERS;
  const set = raw !== undefined && raw.trim() !== '';
  if (!set && isProduction(env)) return { users: [], source: 'none (production)' };
  const text = set ? raw : DEVELOPMENT_DEMO_USERS;
  const problems: string[] = [];
  const users: DemoUserEntry[] = [];
  text.split(',').forEach((part, i) => {
    const entry = part.trim();
    if (entry === '') return;
    const colon = entry.indexOf(':');
    const name = colon === -1 ? '' : entry.slice(0, colon);
    const password = colon === -1 ? '' : entry.slice(colon + 1);
    if (!USER_NAME.test(name) || password === '' || password.length > 256) {
      problems.push(
        `"AUTH_DEMO_USERS" entry ${i + 1} must be name:password (name: 1–64 of A-Z a-z 0-9 _ . @ -; password: 1–256 characters)`,
      );
    } else if (users.some((u) => u.name === name)) {
      problems.push(`"AUTH_DEMO_USERS" names user "${name}" twice`);
    } else users.push({ name, password });
  });
  if (problems.length) throw new GatewayConfigError(problems);
  return { users, source: set ? 'AUTH_DEMO_USERS' : 'development default' };
}
