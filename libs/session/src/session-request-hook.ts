import { Injectable, Optional, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { chainRequestHook, hasRequestHook } from '@redwing/redis';
import type { IncomingMessage } from 'node:http';
import { rawRequest, rawResponse, type AnyRequest, type AnyResponse } from './session-cookie';
import { SESSION_STATE } from './session.constants';
import type { RequestSessionState } from './session.interfaces';
import { SessionMiddleware } from './session.middleware';

type Done = (err?: unknown) => void;

/**
 * Runs `SessionMiddleware` from the HTTP adapter's request hook (`setOnRequestHook`, Express and Fastify)
 * instead of as Nest middleware on every route. Same work, same order for the application (before any Nest
 * middleware, guard or interceptor), without Nest's middleware machinery on each request: on Fastify that
 * machinery (middie's path matching, Nest's middleware proxy, an async function per middleware) cost more
 * than the session check itself on a request without a cookie (docs/performance.md, gateway).
 *
 * The hook appends itself to the chain: hooks installed before it (the Redis request budget, the metrics
 * request span) run first, so the session's Redis read runs inside their scope whatever the module order.
 * A request without a `Cookie` header passes straight through with the state "no session". Errors (CSRF 403,
 * an unexpected failure) go to Nest's exception filters through the adapter's error handler, as they did from
 * the middleware. On an adapter without the hook (a custom one), `SessionModule` applies the middleware instead.
 * @internal provided by SessionModule
 */
@Injectable()
export class SessionRequestHook implements OnModuleInit {
  constructor(
    private readonly middleware: SessionMiddleware,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  /** Whether the application's HTTP adapter has a request hook to run the session from. */
  get installable(): boolean {
    return hasRequestHook(this.adapterHost?.httpAdapter);
  }

  onModuleInit(): void {
    chainRequestHook(
      this.adapterHost?.httpAdapter,
      (request, reply, done) => this.run(request, reply, done),
      'last',
    );
  }

  private run(request: unknown, reply: unknown, done: Done): void {
    const req = rawRequest(request as AnyRequest) as IncomingMessage & {
      [SESSION_STATE]?: RequestSessionState;
    };
    if (req.headers.cookie === undefined) {
      // What SessionService.resolveRequest would find, without an async function per request.
      req[SESSION_STATE] = { status: 'none' };
      return done();
    }
    this.middleware.use(req, rawResponse(reply as AnyResponse), done).catch(done);
  }
}
