import {
  Injectable,
  Logger,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { runInSpan } from '@redwing/redis';
import { lastValueFrom, mergeMap, of, type Observable } from 'rxjs';
import type { CachedResponse } from './cache-serializer';
import { CacheEvict, CachePut, Cacheable } from './cache.decorators';
import type { CacheArgsFn, CacheableOptions, CacheEvictOptions, CachePutOptions } from './cache.interfaces';
import { CacheService, type ProfileRuntime } from './cache.service';
import {
  computeEtag,
  etagMatches,
  requestDirectives,
  responseForbidsStore,
  routeKey,
  userIdentity,
} from './http-cache';

/** What a route does with the cache, worked out once per handler. */
interface RoutePlan {
  cacheable?: {
    options: CacheableOptions;
    profile: ProfileRuntime;
    methods: ReadonlySet<string>;
    declaredStatus?: number;
  };
  put?: { options: CachePutOptions; profile: ProfileRuntime; declaredStatus?: number };
  evict?: CacheEvictOptions;
}

/** A handler result that is not stored (stream, non-2xx status, `no-store`, `unless`). */
interface Uncacheable {
  readonly uncacheable: true;
}
const UNCACHEABLE: Uncacheable = { uncacheable: true };

type HttpRequest = {
  method: string;
  url: string;
  originalUrl?: string;
  headers: Record<string, string | string[] | undefined>;
  user?: unknown;
  raw?: { user?: unknown };
};
type HttpResponse = {
  statusCode: number;
  header(name: string, value: string): unknown;
  getHeader(name: string): unknown;
};

/**
 * The one interceptor that acts on `@Cacheable`, `@CacheEvict` and `@CachePut` on controller routes. Register
 * it globally (one line) and decorate routes; routes without the decorators pass straight through.
 * Works on Express and Fastify. A cache failure never fails a request: with Redis down, L1 still answers
 * and misses run the handler.
 * @example
 * ```ts
 * providers: [{ provide: APP_INTERCEPTOR, useClass: CacheInterceptor }]
 * ```
 */
@Injectable()
export class CacheInterceptor implements NestInterceptor {
  private readonly logger = new Logger('CacheInterceptor');
  private readonly plans = new WeakMap<object, RoutePlan | null>();
  private warnedUser = false;

  constructor(
    private readonly cache: CacheService,
    private readonly reflector: Reflector,
  ) {}

  intercept(
    context: ExecutionContext,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const handler = context.getHandler();
    let plan = this.plans.get(handler);
    if (plan === undefined) {
      plan = this.planFor(handler, context.getClass());
      this.plans.set(handler, plan);
    }
    if (plan === null) return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<HttpRequest>();
    const res = http.getResponse<HttpResponse>();
    if (plan.cacheable && plan.cacheable.methods.has(req.method)) {
      return this.cached(plan.cacheable, context, req, res, next);
    }
    if (plan.put) return this.put(plan.put, context, req, res, next);
    if (plan.evict) return this.evictAfter(plan.evict, context, req, next);
    return next.handle();
  }

  private planFor(handler: object, cls: object): RoutePlan | null {
    const targets = [handler as () => void, cls as () => void];
    const cacheable = this.reflector.getAllAndOverride(Cacheable, targets);
    const put = this.reflector.getAllAndOverride(CachePut, targets);
    const evict = this.reflector.getAllAndOverride(CacheEvict, targets);
    if (!cacheable && !put && !evict) return null;
    const declaredStatus = Reflect.getMetadata(HTTP_CODE_METADATA, handler) as number | undefined;
    return {
      cacheable: cacheable && {
        options: cacheable,
        profile: this.cache.runtime(cacheable.profile),
        methods: new Set((cacheable.methods ?? ['GET']).map((m) => m.toUpperCase())),
        declaredStatus,
      },
      put: put && { options: put, profile: this.cache.runtime(put.profile), declaredStatus },
      evict,
    };
  }

  private cached(
    c: NonNullable<RoutePlan['cacheable']>,
    ctx: ExecutionContext,
    req: HttpRequest,
    res: HttpResponse,
    next: CallHandler,
  ): Observable<unknown> | Promise<Observable<unknown>> {
    const o = c.options;
    if (o.condition && !o.condition(req, ctx)) return next.handle();
    const user = o.scope === 'global' ? undefined : userIdentity(req, this.cache.userKey);
    if (user === null) {
      this.warnUnidentifiedUser();
      return next.handle();
    }
    const key = this.keyFor(o.key, req, ctx, req.method, user);
    const directives = requestDirectives(req.headers['cache-control']);
    if (directives.noStore) {
      res.header('X-Cache', 'MISS');
      return next.handle();
    }
    const p = c.profile;
    if (!directives.noCache && p.config.earlyRefresh === 0) {
      // Synchronous fast path for a fresh L1 hit: no promise, no Redis.
      const now = Date.now();
      const e = this.cache.peek(p, key, now);
      if (e !== undefined && now < e.freshUntil) {
        p.counters.l1Hits++;
        return this.send(req, res, e.value as CachedResponse, 'HIT');
      }
    }
    return this.load(c, ctx, req, res, next, key, user === undefined, directives.noCache);
  }

  private async load(
    c: NonNullable<RoutePlan['cacheable']>,
    ctx: ExecutionContext,
    req: HttpRequest,
    res: HttpResponse,
    next: CallHandler,
    key: string,
    shared: boolean,
    revalidate: boolean,
  ): Promise<Observable<unknown>> {
    const o = c.options;
    const tags = list(o.tags, req, ctx);
    let ran = false;
    let body: unknown;
    const loader = async (): Promise<CachedResponse | Uncacheable> => {
      ran = true;
      body = await lastValueFrom(next.handle(), { defaultValue: undefined });
      return this.toCached(
        body,
        res,
        routeStatus(c.declaredStatus, req.method),
        shared,
        o.unless ? (b) => o.unless!(b, req, ctx) : undefined,
      );
    };
    const options = {
      profile: c.profile.config.name,
      ttl: o.ttl,
      tags,
      staleWhileRevalidate: o.staleWhileRevalidate,
      staleIfError: o.staleIfError,
    };
    let value: CachedResponse | Uncacheable;
    let outcome: 'hit' | 'stale' | 'miss' = 'miss';
    if (revalidate) {
      c.profile.counters.misses++;
      c.profile.counters.loads++;
      value = await loader();
      if (!isUncacheable(value)) {
        await this.cache
          .storeResponse(c.profile, key, value, options)
          .catch((err: unknown) => this.logFailure('store', err));
      }
    } else {
      // One `cache.lookup` span per request (on a miss the handler's work runs inside it).
      const r = await runInSpan('cache.lookup', { 'redwing.cache.profile': options.profile }, (span) =>
        this.cache
          .resolve<CachedResponse | Uncacheable>(key, loader, {
            ...options,
            lock: o.lock,
            response: true,
            unless: isUncacheable,
          })
          .then((result) => {
            span.setAttribute('redwing.cache.outcome', result.outcome);
            return result;
          }),
      );
      value = r.value;
      outcome = r.outcome;
    }
    if (isUncacheable(value)) {
      // The leader sends its own result as usual; a caller that only waited for it runs its own handler.
      return ran ? of(body) : next.handle();
    }
    return this.send(req, res, value, outcome === 'hit' ? 'HIT' : outcome === 'stale' ? 'STALE' : 'MISS');
  }

  private put(
    c: NonNullable<RoutePlan['put']>,
    ctx: ExecutionContext,
    req: HttpRequest,
    res: HttpResponse,
    next: CallHandler,
  ): Observable<unknown> {
    const o = c.options;
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        const user = o.scope === 'global' ? undefined : userIdentity(req, this.cache.userKey);
        if (user === null) {
          this.warnUnidentifiedUser();
          return body;
        }
        const r = this.toCached(
          body,
          res,
          routeStatus(c.declaredStatus, req.method),
          user === undefined,
          o.unless ? (b) => o.unless!(b, req, ctx) : undefined,
        );
        if (!isUncacheable(r)) {
          const key = this.keyFor(o.key, req, ctx, 'GET', user);
          await this.cache
            .storeResponse(c.profile, key, r, {
              ttl: o.ttl,
              tags: list(o.tags, req, ctx),
              staleWhileRevalidate: o.staleWhileRevalidate,
              staleIfError: o.staleIfError,
            })
            .catch((err: unknown) => this.logFailure('store', err));
        }
        return body;
      }),
    );
  }

  private evictAfter(
    o: CacheEvictOptions,
    ctx: ExecutionContext,
    req: HttpRequest,
    next: CallHandler,
  ): Observable<unknown> {
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        await this.cache
          .evict({
            keys: list(o.keys, req, ctx),
            tags: list(o.tags, req, ctx),
            allEntries: o.allEntries,
            profile: o.profile,
          })
          .catch((err: unknown) => this.logFailure('evict', err));
        return body;
      }),
    );
  }

  private send(
    req: HttpRequest,
    res: HttpResponse,
    r: CachedResponse,
    xCache: 'HIT' | 'MISS' | 'STALE',
  ): Observable<unknown> {
    res.header('X-Cache', xCache);
    res.header('ETag', r.etag);
    if (etagMatches(req.headers['if-none-match'], r.etag)) {
      return of(new Response(null, { status: 304, headers: { ETag: r.etag, 'X-Cache': xCache } }));
    }
    if (r.json) res.header('Content-Type', 'application/json; charset=utf-8');
    return of(r.body);
  }

  /** What gets stored for a handler result, or UNCACHEABLE. */
  private toCached(
    body: unknown,
    res: HttpResponse,
    expectedStatus: number,
    shared: boolean,
    unless: ((body: unknown) => boolean) | undefined,
  ): CachedResponse | Uncacheable {
    const status = res.statusCode;
    // The route's own status (@HttpCode, or Nest's default for the method): a replay gets it from Nest again.
    // A status the handler set itself would not be replayed, so such a response is not stored.
    if (status !== expectedStatus && status !== 200) return UNCACHEABLE;
    if (status < 200 || status > 299 || status === 206) return UNCACHEABLE;
    if (responseForbidsStore(res.getHeader('cache-control'), shared)) return UNCACHEABLE;
    let text: string;
    let json: boolean;
    if (typeof body === 'string') {
      text = body;
      json = false;
    } else if (
      typeof body === 'object' &&
      body !== null &&
      !(body instanceof StreamableFile) &&
      !Buffer.isBuffer(body) &&
      !ArrayBuffer.isView(body) &&
      typeof (body as { pipe?: unknown }).pipe !== 'function' &&
      typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function' &&
      Object.prototype.toString.call(body) !== '[object Response]'
    ) {
      text = JSON.stringify(body);
      json = true;
    } else {
      return UNCACHEABLE;
    }
    if (unless?.(body)) return UNCACHEABLE;
    return { body: text, json, status: expectedStatus, etag: computeEtag(text) };
  }

  private keyFor(
    custom: string | CacheArgsFn<string> | undefined,
    req: HttpRequest,
    ctx: ExecutionContext,
    method: string,
    user: string | undefined,
  ): string {
    if (custom === undefined) return routeKey(method, req.originalUrl ?? req.url, user);
    const base = typeof custom === 'function' ? custom(req, ctx) : custom;
    return user === undefined ? base : `${base}#u:${user}`;
  }

  private warnUnidentifiedUser(): void {
    if (this.warnedUser) return;
    this.warnedUser = true;
    this.logger.warn(
      'request.user has no id, sub or userId, so per-user responses are not cached (sharing them could leak ' +
        "one user's data to another). Set CacheModule.forRoot({ http: { userKey } }) or scope: 'global'.",
    );
  }

  private logFailure(what: string, err: unknown): void {
    this.logger.warn(
      `cache ${what} failed (the request was served): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function list(
  v: readonly string[] | CacheArgsFn<readonly string[]> | undefined,
  req: HttpRequest,
  ctx: ExecutionContext,
): string[] | undefined {
  if (v === undefined) return undefined;
  return [...(typeof v === 'function' ? v(req, ctx) : v)];
}

/** The status Nest gives a route's responses: its @HttpCode, else 201 for POST and 200 for the rest. */
function routeStatus(declared: number | undefined, method: string): number {
  return declared ?? (method === 'POST' ? 201 : 200);
}

function isUncacheable(v: unknown): v is Uncacheable {
  return v === UNCACHEABLE;
}
