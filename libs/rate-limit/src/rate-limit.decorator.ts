import { Reflector } from '@nestjs/core';
import { checkLimitShape, NAME_PATTERN } from './rate-limit.config';
import { RateLimitConfigError } from './rate-limit.errors';
import type { RateLimitOptions } from './rate-limit.interfaces';

/** @internal Metadata of `@RateLimit()`: limit objects and names of module `policies`. */
export const RATE_LIMIT_METADATA = Reflector.createDecorator<ReadonlyArray<string | RateLimitOptions>>();
/** @internal Metadata of `@SkipRateLimit()`. */
export const SKIP_RATE_LIMIT_METADATA = Reflector.createDecorator<boolean>();

/** Where a decorator was applied, for messages: `Controller` or `Controller.method`. */
function where(target: object, property?: string | symbol): string {
  const cls = typeof target === 'function' ? target : target.constructor;
  return property === undefined ? cls.name : `${cls.name}.${String(property)}`;
}

/**
 * Limit a route (on a method) or every route of a controller (on the class; a method's own decorator wins).
 * Takes one or several limits — all must admit a request — each a limit object or the name of a limit in
 * the module's `policies`. Without arguments the module defaults apply. Only sets metadata; the global
 * `RateLimitGuard` enforces it. Invalid limits throw `RateLimitConfigError` when the class is defined.
 * @example
 * \@Post('login')
 * \@RateLimit({ points: 5, duration: 60_000, algorithm: 'sliding-window', blockDuration: 300_000, critical: true })
 * login() {}
 *
 * \@Get('me')
 * \@RateLimit({ key: 'user', points: 10, duration: 1_000 }, { key: 'user', points: 1_000, duration: 3_600_000 })
 * me() {}
 *
 * \@Get()
 * \@RateLimit('boards') // RateLimitModule.forRoot({ policies: { boards: { points: 120, duration: 60_000 } } })
 * list() {}
 */
export function RateLimit(...limits: Array<string | RateLimitOptions>): MethodDecorator & ClassDecorator {
  const metadata = RATE_LIMIT_METADATA(Object.freeze([...limits]));
  const decorator = (target: object, property?: string | symbol, descriptor?: PropertyDescriptor): void => {
    const at = `@RateLimit(${where(target, property)})`;
    limits.forEach((limit, i) => {
      const field = limits.length > 1 ? `${at}[${i}]` : at;
      if (typeof limit === 'string') {
        if (!NAME_PATTERN.test(limit)) {
          throw new RateLimitConfigError(field, `names a policy "${limit}" that is not a valid policy name`);
        }
      } else {
        checkLimitShape(limit, field);
      }
    });
    if (property === undefined) (metadata as ClassDecorator)(target as never);
    else (metadata as MethodDecorator)(target, property, descriptor!);
  };
  return decorator as MethodDecorator & ClassDecorator;
}

/**
 * Exempt a route (on a method) or a whole controller (on the class) from rate limiting, including the module
 * defaults of `limitAllRoutes`. `@SkipRateLimit(false)` on a method re-enables limits its class skipped.
 * @example
 * \@Get('health') \@SkipRateLimit() health() {}
 */
export function SkipRateLimit(skip = true): MethodDecorator & ClassDecorator {
  return SKIP_RATE_LIMIT_METADATA(skip);
}
