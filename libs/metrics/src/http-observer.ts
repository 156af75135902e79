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
import { chainRequestHook, hasRequestHook } from '@redwing/redis';
import type { Histogram } from 'prom-client';
import { LabelLimiter, OTHER } from './label-limiter';
import type { ResolvedMetricsConfig } from './metrics.config';
import { METRICS_CONFIG, TRACER_NAME } from './metrics.constants';
import { MetricsService } from './metrics.service';
import { deleteRequestState, routeTemplateOf, setRequestState, type RequestState } from './request-state';
import { SentryReporter } from './sentry-reporter';
import { SeriesService } from './series.service';
import type { HistogramSeries } from './tally';
import { TracingService } from './tracing.service';

/** Names of the HTTP metrics. */
export const HTTP_METRICS = {
  duration: 'redwing_http_request_duration_seconds',
  inFlight: 'redwing_http_requests_in_flight_current',
} as const;

/** Route label of a request no route matched (404s). */
export const UNMATCHED_ROUTE = 'unmatched';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/** `status_class` label of a response status, by `Math.floor(status / 100)` (0–9); index 10 is `aborted`. */
const STATUS_CLASSES = [...Array.from({ length: 10 }, (_, i) => `${i}xx`), 'aborted'];
const ABORTED = 10;

/** The duration series of one route label, by method label, then by status-class index. */
type RouteSeries = Map<string, Array<HistogramSeries | undefined>>;

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
  /**
   * Duration series by route template (only templates the limiter let through: the map stays bounded),
   * method and status class: after the first request of a kind, recording one is three map/array reads
   * and a {@link HistogramSeries.observe} — no label strings built, no hashing.
   */
  private readonly byRoute = new Map<string, RouteSeries>();
  /** Series of every route past the limiter's bound (`other`). */
  private readonly otherRoutes: RouteSeries = new Map();
  /** Series of requests no route matched. */
  private readonly unmatched: RouteSeries = new Map();
  private duration?: Histogram<'method' | 'route' | 'status_class'>;
  /** Requests being served now: a plain number, read by the gauge at scrape time. */
  private inFlightNow = 0;
  /** Whether the per-request state is registered for the interceptor (tracing or Sentry on). */
  private readonly keepState: boolean;

  constructor(
    @Inject(METRICS_CONFIG) private readonly config: ResolvedMetricsConfig,
    private readonly metrics: MetricsService,
    private readonly tracing: TracingService,
    private readonly sentry: SentryReporter,
    private readonly series: SeriesService,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.routes = new LabelLimiter(config.http?.maxRoutes ?? 200);
    this.keepState = Boolean(config.tracing || config.sentry);
  }

  onModuleInit(): void {
    const http = this.config.http;
    const adapter = this.adapterHost?.httpAdapter;
    if (!http || !hasRequestHook(adapter)) return;
    this.duration = this.metrics.histogram({
      name: HTTP_METRICS.duration,
      help: 'HTTP requests served: count (rate), status class (errors) and duration, per method and route template. Route "unmatched" = no route (404).',
      labelNames: ['method', 'route', 'status_class'],
      buckets: http.buckets,
    });
    const inFlight = () => this.inFlightNow;
    this.metrics.gauge({
      name: HTTP_METRICS.inFlight,
      help: 'HTTP requests being served now.',
      collect() {
        this.set(inFlight());
      },
    });
    // Before the hooks installed earlier, so they (and everything after) run in the request's span.
    chainRequestHook(
      adapter,
      (request, reply, next) => {
        try {
          this.onRequest(request, reply, next);
        } catch (err) {
          // Observing must never fail a request.
          this.logger.warn(`request hook failed: ${(err as Error).message}`);
          next();
        }
      },
      'first',
    );
  }

  private onRequest(request: unknown, reply: unknown, next: () => unknown): void {
    const raw = ((request as { raw?: IncomingMessage }).raw ?? request) as IncomingMessage;
    const res = ((reply as { raw?: ServerResponse }).raw ?? reply) as ServerResponse;
    const method = (raw.method ?? 'GET').toUpperCase();
    const state: RequestState = { started: performance.now(), method, request, raw };
    if (this.keepState) setRequestState(state);
    this.inFlightNow++;
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
      if (this.keepState) deleteRequestState(state.raw);
      this.inFlightNow--;
      const route = state.route ?? routeTemplateOf(state.request);
      const aborted = !res.writableFinished;
      const status = res.statusCode;
      const method = METHODS.has(state.method) ? state.method : '_OTHER';
      this.seriesOf(route, method, aborted ? ABORTED : Math.floor(status / 100)).observe(
        (performance.now() - state.started) / 1_000,
      );
      if (this.series.countsRoute(route)) this.series.countRequest(status >= 500);
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

  /** The duration series of a request, created on the first request of its route, method and status class. */
  private seriesOf(route: string | undefined, method: string, statusIndex: number): HistogramSeries {
    let byMethod = route === undefined ? this.unmatched : this.byRoute.get(route);
    if (!byMethod) {
      // First time this template is seen: the limiter decides whether it gets its own label or `other`.
      if (this.routes.get(route!) === OTHER && route !== OTHER) byMethod = this.otherRoutes;
      else {
        byMethod = new Map();
        this.byRoute.set(route!, byMethod);
      }
    }
    let byStatus = byMethod.get(method);
    if (!byStatus) {
      byStatus = [];
      byMethod.set(method, byStatus);
    }
    const known = statusIndex >= 0 && statusIndex <= ABORTED;
    let series = known ? byStatus[statusIndex] : undefined;
    if (!series) {
      const routeLabel =
        route === undefined ? UNMATCHED_ROUTE : byMethod === this.otherRoutes ? OTHER : route;
      const statusClass = known ? STATUS_CLASSES[statusIndex] : `${statusIndex}xx`;
      series = this.duration!.labels(method, routeLabel, statusClass) as unknown as HistogramSeries;
      if (known) byStatus[statusIndex] = series;
    }
    return series;
  }
}
