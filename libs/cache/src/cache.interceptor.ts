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
import type {
  CacheArgsFn,
  CacheableOptions,
  CacheEvictOptions,
  CacheLookup,
  CachePutOptions,
} from './cache.interfaces';
import { CacheService } from './cache.service';
import { resolveRouteKeyOptions, type ResolvedRouteKeyOptions } from './cache.config';
import {
  computeEtag,
  credentialsOf,
  etagMatches,
  requestDirectives,
  responseForbidsStore,
  routeEntryKey,
  userIdentity,
} from './http-cache';

/** What a route does with the cache, worked out once per handler. */
interface RoutePlan {
  cacheable?: {
    options: CacheableOptions;
    keys: ResolvedRouteKeyOptions;
    profile: string | undefined;
    methods: ReadonlySet<string>;
    declaredStatus?: number;
    /** Attributes of its `cache.lookup` span (the same for every request). */
    spanAttributes: Record<string, string>;
  };
  put?: {
    options: CachePutOptions;
    keys: ResolvedRouteKeyOptions;
    profile: string | undefined;
    declaredStatus?: number;
  };
  evict?: CacheEvictOptions;
}

type CacheablePlan = NonNullable<RoutePlan['cacheable']>;

/** Who a route entry is for: a user, the values of the varied headers, and whether it is shared. */
interface EntryScope {
  user: string | undefined;
  vary: Array<readonly [string, string | undefined]> | undefined;
  /** Shared between users (a response's `Cache-Control: private` forbids storing it). */
  shared: boolean;
}

/** One request through the interceptor. */
interface Exchange {
  ctx: ExecutionContext;
  req: HttpRequest;
  res: HttpResponse;
  next: CallHandler;
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
    const x: Exchange = {
      ctx: context,
      req: http.getRequest<HttpRequest>(),
      res: http.getResponse<HttpResponse>(),
      next,
    };
    if (plan.cacheable && plan.cacheable.methods.has(x.req.method)) return this.cached(plan.cacheable, x);
    if (plan.put) return this.put(plan.put, x);
    if (plan.evict) return this.evictAfter(plan.evict, x);
    return next.handle();
  }

  private planFor(handler: object, cls: object): RoutePlan | null {
    const targets = [handler as () => void, cls as () => void];
    const cacheable = this.reflector.getAllAndOverride(Cacheable, targets);
    const put = this.reflector.getAllAndOverride(CachePut, targets);
    const evict = this.reflector.getAllAndOverride(CacheEvict, targets);
    if (!cacheable && !put && !evict) return null;
    const declaredStatus = Reflect.getMetadata(HTTP_CODE_METADATA, handler) as number | undefined;
    if (cacheable) this.cache.assertProfile(cacheable.profile);
    if (put) this.cache.assertProfile(put.profile);
    const route = `${(cls as { name?: string }).name}.${(handler as { name?: string }).name}`;
    return {
      cacheable: cacheable && {
        options: cacheable,
        keys: resolveRouteKeyOptions(`@Cacheable(${route})`, cacheable),
        profile: cacheable.profile,
        methods: new Set((cacheable.methods ?? ['GET']).map((m) => m.toUpperCase())),
        declaredStatus,
        spanAttributes: { 'redwing.cache.profile': cacheable.profile ?? 'default' },
      },
      put: put && {
        options: put,
        keys: resolveRouteKeyOptions(`@CachePut(${route})`, put),
        profile: put.profile,
        declaredStatus,
      },
      evict,
    };
  }

  private cached(c: CacheablePlan, x: Exchange): Observable<unknown> | Promise<Observable<unknown>> {
    const o = c.options;
    const { req, res, next } = x;
    if (o.condition && !o.condition(req, x.ctx)) return next.handle();
    const scope = this.scopeOf(o, c.keys, req);
    if (scope === undefined) return next.handle();
    const key = this.keyFor(o.key, x, { method: req.method, keys: c.keys, scope });
    const directives = requestDirectives(req.headers['cache-control']);
    if (directives.noStore) {
      res.header('X-Cache', 'MISS');
      return next.handle();
    }
    if (!directives.noCache) {
      // Synchronous fast path for a fresh L1 hit: no promise, no Redis.
      const hit = this.cache.peek<CachedResponse>(key, { profile: c.profile });
      if (hit !== undefined) return this.send(x, hit, 'HIT');
    }
    return this.load(c, x, { key, shared: scope.shared, revalidate: directives.noCache });
  }

  private load(
    c: CacheablePlan,
    x: Exchange,
    lookup: { key: string; shared: boolean; revalidate: boolean },
  ): Promise<Observable<unknown>> {
    const o = c.options;
    const { req, ctx, next } = x;
    let ran = false;
    let body: unknown;
    // Runs only on a miss (a hit never calls it).
    const loader = async (): Promise<CachedResponse | Uncacheable> => {
      ran = true;
      body = await lastValueFrom(next.handle(), { defaultValue: undefined });
      return this.toCached(body, x, {
        expectedStatus: routeStatus(c.declaredStatus, req.method),
        shared: lookup.shared,
        unless: o.unless ? (b) => o.unless!(b, req, ctx) : undefined,
      });
    };
    // `refresh` (request `no-cache`): run the handler and store its response without reading the cached one.
    const options = {
      profile: c.profile,
      ttl: o.ttl,
      tags: list(o.tags, req, ctx),
      staleWhileRevalidate: o.staleWhileRevalidate,
      staleIfError: o.staleIfError,
      lock: o.lock,
      response: true,
      refresh: lookup.revalidate,
      unless: isUncacheable,
    };
    const answer = (r: CacheLookup<CachedResponse | Uncacheable>): Observable<unknown> => {
      const value = r.value;
      // The leader sends its own result as usual; a caller that only waited for it runs its own handler.
      if (isUncacheable(value)) return ran ? of(body) : next.handle();
      return this.send(x, value, r.outcome === 'hit' ? 'HIT' : r.outcome === 'stale' ? 'STALE' : 'MISS');
    };
    if (lookup.revalidate) return this.cache.resolve(lookup.key, loader, options).then(answer);
    // One `cache.lookup` span per lookup (on a miss the handler's work runs inside it).
    return runInSpan('cache.lookup', c.spanAttributes, (span) =>
      this.cache.resolve(lookup.key, loader, options).then((r) => {
        span.setAttribute('redwing.cache.outcome', r.outcome);
        return answer(r);
      }),
    );
  }

  private put(c: NonNullable<RoutePlan['put']>, x: Exchange): Observable<unknown> {
    const o = c.options;
    const { req, ctx } = x;
    return x.next.handle().pipe(
      mergeMap(async (body: unknown) => {
        const scope = this.scopeOf(o, c.keys, req);
        if (scope === undefined) return body;
        const r = this.toCached(body, x, {
          expectedStatus: routeStatus(c.declaredStatus, req.method),
          shared: scope.shared,
          unless: o.unless ? (b) => o.unless!(b, req, ctx) : undefined,
        });
        if (!isUncacheable(r)) {
          const key = this.keyFor(o.key, x, { method: 'GET', keys: c.keys, scope });
          await this.cache
            .storeResponse(key, r, {
              profile: c.profile,
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

  private evictAfter(o: CacheEvictOptions, x: Exchange): Observable<unknown> {
    const { req, ctx, next } = x;
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

  private send(x: Exchange, r: CachedResponse, xCache: 'HIT' | 'MISS' | 'STALE'): Observable<unknown> {
    const { req, res } = x;
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
    x: Exchange,
    rule: { expectedStatus: number; shared: boolean; unless: ((body: unknown) => boolean) | undefined },
  ): CachedResponse | Uncacheable {
    const { res } = x;
    const { expectedStatus, shared, unless } = rule;
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
    x: Exchange,
    entry: { method: string; keys: ResolvedRouteKeyOptions; scope: EntryScope },
  ): string {
    const { req } = x;
    return routeEntryKey({
      method: entry.method,
      url: req.originalUrl ?? req.url,
      query: entry.keys.query,
      custom: custom === undefined ? undefined : typeof custom === 'function' ? custom(req, x.ctx) : custom,
      user: entry.scope.user,
      vary: entry.scope.vary,
    });
  }

  /**
   * Who the entry of this request is for, or undefined when the request must bypass the cache: a user
   * without an id (sharing could leak), or credentials (`http.credentialHeaders`) without an identified
   * user that the route did not opt in to (`scope: 'global'`, or the header listed in `vary`).
   */
  private scopeOf(
    o: { scope?: 'user' | 'global' },
    keys: ResolvedRouteKeyOptions,
    req: HttpRequest,
  ): EntryScope | undefined {
    const vary = keys.vary?.map((name) => [name, headerText(req.headers[name])] as const);
    if (o.scope === 'global') return { user: undefined, vary, shared: true };
    const user = userIdentity(req, this.cache.http.userKey);
    if (user === null) {
      this.warnUnidentifiedUser();
      return undefined;
    }
    if (user !== undefined) return { user, vary, shared: false };
    const credentials = credentialsOf(req.headers, this.cache.http.credentialHeaders);
    if (credentials.some((name) => !keys.vary?.includes(name))) return undefined;
    return { user: undefined, vary, shared: credentials.length === 0 };
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

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function isUncacheable(v: unknown): v is Uncacheable {
  return v === UNCACHEABLE;
}
