import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Gauge, Histogram } from 'prom-client';
import { LabelLimiter } from './label-limiter';
import type { ResolvedMetricsConfig } from './metrics.config';
import { METRICS_CONFIG, TRACER_NAME } from './metrics.constants';
import { MetricsService } from './metrics.service';
import { deleteRequestState, routeTemplateOf, setRequestState, type RequestState } from './request-state';
import { SentryReporter } from './sentry-reporter';
import { SeriesService } from './series.service';
import { TracingService } from './tracing.service';

/** Names of the HTTP metrics. */
export const HTTP_METRICS = {
  duration: 'redwing_http_request_duration_seconds',
  inFlight: 'redwing_http_requests_in_flight_current',
} as const;

/** Route label of a request no route matched (404s). */
export const UNMATCHED_ROUTE = 'unmatched';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

type RequestHook = (request: unknown, reply: unknown, done: (err?: Error) => void) => unknown;

/** The parts of Nest's HTTP adapters (Express and Fastify) the observer uses. */
interface HookableAdapter {
  setOnRequestHook?: (hook: RequestHook) => void;
  onRequestHook?: RequestHook;
}

/**
 * Observes every HTTP request from Nest's adapter request hook (`setOnRequestHook`, on Express and
 * Fastify): RED metrics labelled by method, route template and status class, the cluster series, and —
 * with tracing on — the SERVER span, made the active context before body parsing, guards, interceptors
 * and the handler run. That is why the span is not opened in an interceptor: guards (the rate-limit
 * decision) run before interceptors, and 404s and guard rejections never reach one.
 */
@Injectable()
export class HttpObserver implements OnModuleInit {
  private readonly logger = new Logger('HttpMetrics');
  private readonly routes: LabelLimiter;
  private readonly children = new Map<string, { observe(v: number): void }>();
  private duration?: Histogram<'method' | 'route' | 'status_class'>;
  private inFlight?: Gauge;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    private readonly metrics: MetricsService,
    private readonly tracing: TracingService,
    private readonly sentry: SentryReporter,
    private readonly series: SeriesService,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.routes = new LabelLimiter(config.http?.maxRoutes ?? 200);
  }

  onModuleInit(): void {
    const http = this.config.http;
    const adapter = this.adapterHost?.httpAdapter as unknown as HookableAdapter | undefined;
    if (!http || !adapter || typeof adapter.setOnRequestHook !== 'function') return;
    this.duration = this.metrics.histogram({
      name: HTTP_METRICS.duration,
      help: 'HTTP requests served: count (rate), status class (errors) and duration, per method and route template. Route "unmatched" = no route (404).',
      labelNames: ['method', 'route', 'status_class'],
      buckets: http.buckets,
    });
    this.inFlight = this.metrics.gauge({
      name: HTTP_METRICS.inFlight,
      help: 'HTTP requests being served now.',
    });
    // The adapter keeps one hook; chain to one installed before us rather than replace it.
    const previous = adapter.onRequestHook;
    adapter.setOnRequestHook((request, reply, done) => {
      const next = previous ? () => previous.call(adapter, request, reply, done) : () => done();
      try {
        this.onRequest(request, reply, next);
      } catch (err) {
        // Observing must never fail a request.
        this.logger.warn(`request hook failed: ${(err as Error).message}`);
        next();
      }
    });
  }

  private onRequest(request: unknown, reply: unknown, next: () => unknown): void {
    const raw = ((request as { raw?: IncomingMessage }).raw ?? request) as IncomingMessage;
    const res = ((reply as { raw?: ServerResponse }).raw ?? reply) as ServerResponse;
    const method = (raw.method ?? 'GET').toUpperCase();
    const state: RequestState = { started: performance.now(), method, request, raw };
    setRequestState(state);
    this.inFlight!.inc();
    res.once('close', () => this.finish(state, res));
    if (!this.tracing.enabled) {
      next();
      return;
    }
    const parent = propagation.extract(ROOT_CONTEXT, raw.headers);
    const userAgent = raw.headers['user-agent'];
    // Raw paths and queries are not recorded: they may hold ids, e-mail addresses or tokens.
    const span = trace.getTracer(TRACER_NAME).startSpan(
      METHODS.has(method) ? method : 'HTTP',
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: METHODS.has(method) ? method : '_OTHER',
          [ATTR_URL_SCHEME]: 'encrypted' in raw.socket && raw.socket.encrypted ? 'https' : 'http',
          [ATTR_NETWORK_PROTOCOL_VERSION]: raw.httpVersion,
          ...(typeof userAgent === 'string' ? { [ATTR_USER_AGENT_ORIGINAL]: userAgent } : {}),
        },
      },
      parent,
    );
    state.span = span;
    // Everything after this hook runs in the span's context. Body parsing continues from socket events,
    // but Fastify's content-type parser and Express's raw-body resume in the request's own async context
    // (AsyncResource), so no EventEmitter binding is needed (the POST tracing tests send a body in two parts).
    context.with(trace.setSpan(parent, span), next);
  }

  private finish(state: RequestState, res: ServerResponse): void {
    try {
      deleteRequestState(state.raw);
      this.inFlight!.dec();
      const route = state.route ?? routeTemplateOf(state.request);
      const aborted = !res.writableFinished;
      const status = res.statusCode;
      const statusClass = aborted ? 'aborted' : `${Math.floor(status / 100)}xx`;
      const method = METHODS.has(state.method) ? state.method : '_OTHER';
      const routeLabel = route === undefined ? UNMATCHED_ROUTE : this.routes.get(route);
      const key = `${method} ${routeLabel} ${statusClass}`;
      let child = this.children.get(key);
      if (!child) {
        child = this.duration!.labels(method, routeLabel, statusClass);
        this.children.set(key, child);
      }
      child.observe((performance.now() - state.started) / 1_000);
      if (this.series.countsRoute(route)) {
        this.series.increment('requests');
        if (status >= 500) this.series.increment('errors');
      }
      if (status === 500 && !aborted) {
        state.route ??= route;
        this.sentry.captureServerError(state, status);
      }
      const span = state.span;
      if (span) {
        if (route !== undefined) {
          span.setAttribute(ATTR_HTTP_ROUTE, route);
          span.updateName(`${method === '_OTHER' ? 'HTTP' : method} ${route}`);
        }
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
        if (aborted) span.setAttribute('redwing.http.aborted', true);
        if (status >= 500) {
          if (!state.errorRecorded) span.setAttribute(ATTR_ERROR_TYPE, String(status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      }
    } catch (err) {
      this.logger.warn(`recording a request failed: ${(err as Error).message}`);
    }
  }
}
