import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { runInSpan } from '@redwing/redis';
import { LimitResolver, type LimitCall, type RouteLimits } from './limit-resolver';
import { RateLimitExplorer } from './rate-limit.explorer';
import { RateLimitExceededException, RateLimitUnavailableException } from './rate-limit.errors';
import type { RateLimitDecision, RateLimitState } from './rate-limit.interfaces';
import { RateLimitService } from './rate-limit.service';

/**
 * The one guard that enforces `@RateLimit()` (and, with `limitAllRoutes`, the module defaults) on HTTP routes.
 * Register it globally, once:
 * `providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }]`.
 *
 * Refusals are a 429 with a JSON body and `Retry-After`; a `critical` limit with Redis unavailable is a 503
 * with `Retry-After`. Admitted responses carry the IETF draft `RateLimit-Policy` and `RateLimit` headers
 * (and `X-RateLimit-*` with `legacyHeaders`). Other contexts (WebSocket, microservices) pass through: limit
 * them with `RateLimitService` directly.
 *
 * Per request: the route's limits come from `RateLimitExplorer` (metadata read and resolved once per
 * handler), who is counted from `LimitResolver`, and the decision from `RateLimitService.decide()`.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    private readonly explorer: RateLimitExplorer,
    private readonly resolver: LimitResolver,
    private readonly service: RateLimitService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const route = this.explorer.routeLimits(context.getHandler(), context.getClass());
    if (!route) return true;
    // Without key functions everything is known synchronously: one promise (the decision) per request.
    const calls = this.resolver.calls(route, context, context.switchToHttp().getRequest<object>());
    if (Array.isArray(calls)) {
      // A leased limit decided from this instance's slice: no round trip, no promise, no span.
      const now = this.service.decideNow(calls);
      if (now) return this.enforce(context, route, now);
    }
    const decided = Array.isArray(calls) ? this.decide(calls) : calls.then((c) => this.decide(c));
    return decided.then((decision) => this.enforce(context, route, decision));
  }

  /** The decision, in its own `ratelimit.decision` span when tracing is on (Redis commands nest under it). */
  private decide(calls: LimitCall[]): Promise<RateLimitDecision> {
    return runInSpan('ratelimit.decision', { 'redwing.ratelimit.limits': calls.length }, (span) =>
      this.service.decide(calls).then((decision) => {
        span.setAttribute('redwing.ratelimit.allowed', decision.allowed);
        return decision;
      }),
    );
  }

  private enforce(context: ExecutionContext, route: RouteLimits, decision: RateLimitDecision): boolean {
    const response = context.switchToHttp().getResponse<unknown>();
    this.writeHeaders(response, route, decision);
    if (decision.allowed) return true;
    const retryAfter = Math.max(1, Math.ceil(decision.retryAfter / 1_000));
    this.setHeader(response, 'Retry-After', String(retryAfter));
    if (decision.unavailable) throw new RateLimitUnavailableException(retryAfter);
    throw new RateLimitExceededException(retryAfter, refusalMessage(decision, retryAfter));
  }

  private writeHeaders(response: unknown, route: RouteLimits, decision: RateLimitDecision): void {
    const { headers, legacyHeaders } = this.resolver.config;
    if (!headers && !legacyHeaders) return;
    const enforced: RateLimitState[] = [];
    for (const s of decision.limits)
      if (!s.shadow && s.mode !== 'unavailable' && s.mode !== 'bypass') enforced.push(s);
    if (enforced.length === 0) return;
    if (headers) {
      this.setHeader(response, 'RateLimit-Policy', route.policyHeader);
      this.setHeader(
        response,
        'RateLimit',
        enforced.map((s) => `"${s.name}";r=${s.remaining};t=${Math.ceil(s.reset / 1_000)}`).join(', '),
      );
    }
    if (legacyHeaders) {
      let tightest = enforced[0];
      for (const s of enforced) if (s.remaining < tightest.remaining) tightest = s;
      this.setHeader(response, 'X-RateLimit-Limit', String(tightest.points));
      this.setHeader(response, 'X-RateLimit-Remaining', String(tightest.remaining));
      this.setHeader(response, 'X-RateLimit-Reset', String(Math.ceil(tightest.reset / 1_000)));
    }
  }

  private setHeader(response: unknown, name: string, value: string): void {
    this.adapterHost.httpAdapter.setHeader(response, name, value);
  }
}

function refusalMessage(decision: RateLimitDecision, retryAfter: number): string {
  const refused = decision.limits.find((s) => !s.allowed && !s.shadow);
  if (!refused) return `Too many requests; retry in ${retryAfter} s.`;
  const seconds = refused.duration / 1_000;
  return (
    `Too many requests: the limit "${refused.name}" allows ${refused.points} per ` +
    `${Number.isInteger(seconds) ? `${seconds} s` : `${refused.duration} ms`}; retry in ${retryAfter} s.`
  );
}
