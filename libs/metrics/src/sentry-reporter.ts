import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { HttpException } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import * as Sentry from '@sentry/node';
import { RedisClientManager } from '@redwing/redis';
import type { ResolvedMetricsConfig } from './metrics.config';
import { METRICS_CONFIG } from './metrics.constants';
import { FILTERED, isSensitiveName, redactHeaders, splitUrl } from './redact-request';
import type { RequestState } from './request-state';

/**
 * Sentry, like the OpenTelemetry API, is one client per process: the first app with a DSN initialises
 * it, the last one to close flushes and closes it.
 */
const runtime: {
  users: number;
  closing?: Promise<unknown>;
  /** Process listeners Sentry's integrations added, removed again when it closes. */
  added: Array<[ProcessEvent, Listener]>;
} = { users: 0, added: [] };

type ProcessEvent = 'uncaughtException' | 'unhandledRejection';
const PROCESS_EVENTS: ProcessEvent[] = ['uncaughtException', 'unhandledRejection'];
type Listener = (...args: unknown[]) => void;
const listenersOf = (event: ProcessEvent): Listener[] =>
  (process as NodeJS.EventEmitter).listeners(event) as Listener[];

/** What an event says about the request it happened in (all of it already redacted). */
interface RequestContext {
  method: string;
  route: string;
  request: {
    method: string;
    url: string;
    query_string: string;
    headers: Record<string, string>;
  };
  traceId?: string;
  spanId?: string;
  userId?: string;
}

/**
 * Whether an error is one Sentry should hear about: anything that is not an `HttpException`, and
 * `HttpException`s of status 500 and above except 503 (deliberate "unavailable", e.g. a lib failing
 * closed while Redis is down). 4xx are the client's business.
 */
export function isReportable(err: unknown): boolean {
  if (!(err instanceof HttpException)) return true;
  const status = err.getStatus();
  return status >= 500 && status !== 503;
}

/**
 * Reports unhandled errors to Sentry with the route, redacted request data, the user id and the state of
 * every Redis client. Spans are OpenTelemetry's alone: Sentry's tracing stays off and it registers no
 * tracer provider (`enableOpenTelemetrySetup: false`, no HTTP/framework integrations), so nothing is
 * reported twice; events carry the request span's trace id instead, to link the two.
 */
@Injectable()
export class SentryReporter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Sentry');
  private active = false;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    @Optional() private readonly redis?: RedisClientManager,
  ) {}

  /** Whether errors of this app are reported. */
  get enabled(): boolean {
    return this.active;
  }

  onModuleInit(): void {
    const sentry = this.config.sentry;
    if (!sentry) return;
    this.active = true;
    if (runtime.users++ > 0) return;
    const before = new Map(PROCESS_EVENTS.map((e) => [e, new Set(listenersOf(e))]));
    Sentry.init({
      ...sentry.init,
      dsn: sentry.dsn,
      environment: sentry.environment,
      release: sentry.release,
      serverName: this.config.serviceName,
      // What Sentry would collect by itself stays off; the request data on events is ours, redacted.
      dataCollection: {
        userInfo: false,
        cookies: false,
        httpHeaders: false,
        httpBodies: [],
        urlQueryParams: false,
        databaseQueryData: false,
        ...sentry.init?.dataCollection,
      },
      // One tracer provider per process (ours, when tracing is on) and no Sentry spans or transactions.
      enableOpenTelemetrySetup: false,
      enableRuntimeChannelInjection: false,
      tracesSampleRate: undefined,
      tracesSampler: undefined,
      defaultIntegrations: false,
      integrations: [
        Sentry.eventFiltersIntegration(),
        Sentry.functionToStringIntegration(),
        Sentry.linkedErrorsIntegration(),
        Sentry.nodeContextIntegration(),
        Sentry.contextLinesIntegration(),
        Sentry.onUncaughtExceptionIntegration(),
        Sentry.onUnhandledRejectionIntegration({ mode: 'warn' }),
        ...(Array.isArray(sentry.init?.integrations) ? sentry.init.integrations : []),
      ],
      beforeSend: (event, hint) => {
        scrubEvent(event);
        const user = sentry.init?.beforeSend;
        return user ? user(event, hint) : event;
      },
    });
    for (const event of PROCESS_EVENTS) {
      for (const l of listenersOf(event)) {
        if (!before.get(event)!.has(l)) runtime.added.push([event, l]);
      }
    }
    this.logger.log(`Sentry on (environment ${sentry.environment ?? 'unset'})`);
  }

  /** Report `err`, thrown while serving the request described by `state` (if any). Never throws. */
  captureException(err: unknown, state?: RequestState, kind = 'http'): void {
    if (!this.active) return;
    try {
      const req = state ? this.describe(state) : undefined;
      Sentry.withScope((scope) => {
        this.applyScope(scope, req, kind);
        Sentry.captureException(err);
      });
      if (state) state.reported = true;
    } catch (e) {
      this.logger.warn(`could not report an error to Sentry: ${(e as Error).message}`);
    }
  }

  /**
   * Report a 500 answered without an exception this module saw (one thrown by middleware or a guard,
   * before the interceptor). Never throws.
   */
  captureServerError(state: RequestState, status: number): void {
    if (!this.active || state.reported) return;
    try {
      const req = this.describe(state);
      Sentry.withScope((scope) => {
        this.applyScope(scope, req, 'http');
        scope.setFingerprint(['http-500', req.method, req.route]);
        Sentry.captureMessage(`HTTP ${status} on ${req.method} ${req.route}`, 'error');
      });
      state.reported = true;
    } catch (e) {
      this.logger.warn(`could not report an error to Sentry: ${(e as Error).message}`);
    }
  }

  /** Send what is queued, waiting at most `timeout` ms. */
  async flush(timeout = 2_000): Promise<boolean> {
    return this.active ? Sentry.flush(timeout) : true;
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    if (--runtime.users > 0) return;
    runtime.closing = Sentry.close(2_000).catch(() => false);
    await runtime.closing;
    // Sentry.close() leaves its process handlers installed; an app closed for good takes them away.
    for (const [event, listener] of runtime.added.splice(0)) {
      (process as NodeJS.EventEmitter).off(event, listener);
    }
  }

  private applyScope(scope: Sentry.Scope, req: RequestContext | undefined, kind: string): void {
    scope.setTag('service', this.config.serviceName);
    scope.setTag('context', kind);
    if (this.redis) scope.setContext('redis', this.redisState());
    if (!req) return;
    scope.setTransactionName(`${req.method} ${req.route}`);
    scope.setTag('http.route', req.route);
    scope.setTag('http.method', req.method);
    if (req.userId) scope.setUser({ id: req.userId });
    if (req.traceId && req.spanId) {
      // Links the event to the OpenTelemetry trace of the request (the same trace id in both tools).
      scope.setPropagationContext({
        traceId: req.traceId,
        propagationSpanId: req.spanId,
        sampleRand: Math.random(),
        sampled: true,
      });
      scope.setContext('otel', { trace_id: req.traceId, span_id: req.spanId });
    }
    const request = req.request;
    scope.addEventProcessor((event) => ({ ...event, request }));
  }

  private redisState(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    try {
      for (const [name, h] of Object.entries(this.redis!.getHealth())) {
        out[name] = {
          state: h.state,
          breaker: h.breaker,
          status: h.status,
          latencyMs: h.latencyMs,
          url: h.url, // redacted by @redwing/redis
          lastError: h.lastError,
        };
      }
    } catch {
      // A closed manager: report no Redis context rather than fail the report.
    }
    return out;
  }

  private describe(state: RequestState): RequestContext {
    const raw: IncomingMessage = state.raw;
    const { path, query } = splitUrl(raw.url);
    const host = typeof raw.headers.host === 'string' ? raw.headers.host : 'localhost';
    const spanContext = state.span?.spanContext();
    const user = (state.request as { user?: { id?: unknown } } | undefined)?.user;
    return {
      method: state.method,
      route: state.route ?? 'unmatched',
      request: {
        method: state.method,
        url: `http://${host}${path}`,
        query_string: query,
        headers: redactHeaders(raw.headers),
      },
      ...(spanContext ? { traceId: spanContext.traceId, spanId: spanContext.spanId } : {}),
      ...(user && (typeof user.id === 'string' || typeof user.id === 'number')
        ? { userId: String(user.id) }
        : {}),
    };
  }
}

/** Last line of defence: whatever put request data on an event, secrets and bodies do not leave. */
function scrubEvent(event: Sentry.ErrorEvent): void {
  const req = event.request;
  if (!req) return;
  delete req.cookies;
  delete req.data;
  delete req.env;
  if (req.headers) {
    for (const name of Object.keys(req.headers)) if (isSensitiveName(name)) req.headers[name] = FILTERED;
  }
  if (typeof req.query_string === 'string') req.query_string = splitUrl(`?${req.query_string}`).query;
  if (typeof req.url === 'string' && req.url.includes('?')) {
    const { path, query } = splitUrl(req.url);
    req.url = query ? `${path}?${query}` : path;
  }
}
