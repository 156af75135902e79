import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { runInSpan } from '@redwing/redis';
import { RateLimitExceededException, RateLimitUnavailableException } from './rate-limit.errors';
import type { RateLimitDecision, RateLimitState } from './rate-limit.interfaces';
import { RateLimitService, type LimitCall, type RouteLimits } from './rate-limit.service';

interface HttpRequest {
  user?: unknown;
  raw?: { user?: unknown };
}

/**
 * The one guard that enforces `@RateLimit()` (and, with `limitAllRoutes`, the module defaults) on HTTP routes.
 * Register it globally, once:
 * `providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }]`.
 *
 * Refusals are a 429 with a JSON body and `Retry-After`; a `critical` limit with Redis unavailable is a 503
 * with `Retry-After`. Admitted responses carry the IETF draft `RateLimit-Policy` and `RateLimit` headers
 * (and `X-RateLimit-*` with `legacyHeaders`). Other contexts (WebSocket, microservices) pass through: limit
 * them with `RateLimitService` directly.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    private readonly service: RateLimitService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const route = this.service.routeLimits(context.getHandler(), context.getClass());
    if (!route) return true;
    const request = context.switchToHttp().getRequest<HttpRequest>();
    // Without key functions everything is known synchronously: one promise (the decision) per request.
    const calls = route.keyFunctions
      ? this.callsAsync(route, context, request)
      : this.calls(route, context, request);
    const decided = Array.isArray(calls) ? this.decide(calls) : calls.then((c) => this.decide(c));
    return decided.then((decision) => this.enforce(context, route, decision));
  }

  /** The decision, in its own `ratelimit.decision` span when tracing is on (Redis commands nest under it). */
  private decide(calls: LimitCall[]): Promise<RateLimitDecision> {
    return runInSpan('ratelimit.decision', { 'redwing.ratelimit.limits': calls.length }, (span) =>
      this.service.decide(calls, 'consume').then((decision) => {
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

  /** Subjects and costs of a route whose keys are all 'ip' or 'user'. */
  private calls(route: RouteLimits, context: ExecutionContext, request: HttpRequest): LimitCall[] {
    const calls: LimitCall[] = [];
    let ip: string | undefined;
    for (const entry of route.entries) {
      const subject =
        entry.key === 'user'
          ? (this.userKey(request) ?? (ip ??= this.service.identify(request)))
          : (ip ??= this.service.identify(request));
      calls.push({
        limit: entry.limit,
        subject: this.service.subject(subject),
        cost: this.costOf(entry, context),
      });
    }
    return calls;
  }

  /** The same when a key is a function, which may be async. */
  private async callsAsync(
    route: RouteLimits,
    context: ExecutionContext,
    request: HttpRequest,
  ): Promise<LimitCall[]> {
    const calls: LimitCall[] = [];
    let ip: string | undefined;
    for (const entry of route.entries) {
      const key = entry.key;
      let subject: string;
      if (key === 'ip') subject = ip ??= this.service.identify(request);
      else if (key === 'user') subject = this.userKey(request) ?? (ip ??= this.service.identify(request));
      else {
        const custom = await key(context);
        subject =
          custom === undefined || custom === null || custom === ''
            ? (ip ??= this.service.identify(request))
            : `key:${custom}`;
      }
      calls.push({
        limit: entry.limit,
        subject: this.service.subject(subject),
        cost: this.costOf(entry, context),
      });
    }
    return calls;
  }

  private costOf(entry: RouteLimits['entries'][number], context: ExecutionContext): number {
    const cost = entry.cost;
    if (typeof cost === 'number') return cost;
    const value = cost(context as never);
    const points = entry.limit.spec.points;
    if (!Number.isInteger(value) || value < 1 || value > points) {
      throw new Error(
        `@RateLimit cost function returned ${String(value)}; it must return an integer from 1 to the limit's points (${points}).`,
      );
    }
    return value;
  }

  /** `user:<id>` of the authenticated user (`request.user`; on Fastify also what middleware set on `request.raw`). */
  private userKey(request: HttpRequest): string | undefined {
    const user = request.user ?? request.raw?.user;
    if (user === undefined || user === null) return undefined;
    const id = this.service.config.userId(user);
    return id === undefined || id === null || id === '' ? undefined : `user:${id}`;
  }

  private writeHeaders(response: unknown, route: RouteLimits, decision: RateLimitDecision): void {
    const { headers, legacyHeaders } = this.service.config;
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
