import type { ExecutionContext } from '@nestjs/common';
import type { RateLimitOptions } from '@redwing/rate-limit';

/**
 * Failed logins per client address: 30 a minute (sliding window). Successful logins give their point back,
 * so only failures count. Critical: with Redis down the route answers 503 instead of counting per instance.
 */
export const LOGIN_PER_IP = {
  name: 'auth-login-ip',
  points: 30,
  duration: 60_000,
  algorithm: 'sliding-window',
  critical: true,
} as const satisfies RateLimitOptions;

/** Failed logins per user name, from any address: 10 a minute, then blocked for a minute. */
export const LOGIN_PER_USER = {
  name: 'auth-login-user',
  points: 10,
  duration: 60_000,
  algorithm: 'sliding-window',
  blockDuration: 60_000,
  critical: true,
} as const satisfies RateLimitOptions;

/** The counted user name of a login request: trimmed, lower-cased, at most 64 characters; none when absent. */
export function loginUserKey(username: unknown): string | undefined {
  if (typeof username !== 'string') return undefined;
  const name = username.trim().toLowerCase().slice(0, 64);
  return name === '' ? undefined : `login-user:${name}`;
}

/** `@RateLimit` key function: the user name in the login body. */
export function loginUserFromContext(ctx: ExecutionContext): string | undefined {
  const body = ctx.switchToHttp().getRequest<{ body?: { username?: unknown } }>().body;
  return loginUserKey(body?.username);
}
