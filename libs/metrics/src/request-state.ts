import type { IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';

/** What the HTTP observer knows about one request, from the adapter hook until the response closes. */
export interface RequestState {
  /** `performance.now()` when the adapter hook saw the request. */
  started: number;
  /** Upper-case HTTP method as received. */
  method: string;
  /** The adapter's request object (Fastify request or Express req). */
  request: unknown;
  raw: IncomingMessage;
  /** The SERVER span, when tracing is on. */
  span?: Span;
  /** `Controller.handler` once the interceptor ran. */
  handler?: string;
  /** The route template, once known. */
  route?: string;
  /** An exception was reported to Sentry for this request. */
  reported?: boolean;
  /** An exception was recorded on the span (its `error.type` names it). */
  errorRecorded?: boolean;
}

const states = new WeakMap<IncomingMessage, RequestState>();

/** The state of a request, given the adapter request (Fastify's `request.raw` is used) or the raw one. */
export function requestStateOf(request: unknown): RequestState | undefined {
  if (!request || typeof request !== 'object') return undefined;
  const raw = (request as { raw?: IncomingMessage }).raw ?? (request as IncomingMessage);
  return states.get(raw);
}

/** Remembers a request's state until {@link deleteRequestState} (weakly: a lost request is collected). */
export function setRequestState(state: RequestState): void {
  states.set(state.raw, state);
}

/** Forgets a request's state once its response closed. */
export function deleteRequestState(raw: IncomingMessage): void {
  states.delete(raw);
}

/** Catch-all paths Nest mounts path-wide middleware on (`{*path}`, `*`, `/*`, with or without a slash). */
const MIDDLEWARE_MOUNT = /^\/?(\{\*\w+\}|\*|\(\.\*\))$/;

/**
 * The route template of a request as the adapter matched it (`/boards/:id`), or `undefined` when no
 * route matched (404) — never the raw path. Fastify: `routeOptions.url`; Express: `baseUrl + route.path`.
 */
export function routeTemplateOf(request: unknown): string | undefined {
  if (!request || typeof request !== 'object') return undefined;
  const r = request as {
    routeOptions?: { url?: string };
    route?: { path?: unknown };
    baseUrl?: string;
    raw?: unknown;
  };
  if (r.raw !== undefined) return r.routeOptions?.url || undefined;
  const path = r.route?.path;
  if (typeof path !== 'string') return undefined;
  // Express keeps `req.route` of the last matched layer. Nest mounts middleware applied to every path
  // (`forRoutes({ path: '{*path}', method: ALL })`) as a catch-all route, so a request no controller
  // matched (a 404) would otherwise be labelled with the middleware's mount instead of `unmatched`. A
  // controller route of exactly that shape (`@All('{*path}')`) is labelled `unmatched` too.
  if (MIDDLEWARE_MOUNT.test(path)) return undefined;
  return `${r.baseUrl ?? ''}${path}` || '/';
}
