import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { LockBusyError, LockLostError, LockUnavailableError } from '@redwing/lock';

/** Body of a 409/503 answered for a lock. */
export interface LockErrorBody {
  statusCode: number;
  error: string;
  message: string;
  /** Milliseconds after which a retry may succeed. */
  retryAfter: number;
}

/**
 * Maps the lock errors of a route to HTTP: busy → 409 with the holder's remaining lease as `Retry-After`
 * (seconds, rounded up); Redis unavailable or the lease lost mid-work → 503 + `Retry-After: 1`. The messages
 * name the resource only, never an owner value.
 */
@Catch(LockBusyError, LockUnavailableError, LockLostError)
export class LockErrorsFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(err: LockBusyError | LockUnavailableError | LockLostError, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const res: unknown = host.switchToHttp().getResponse();
    const busy = err instanceof LockBusyError;
    const retryAfter = busy ? err.retryAfter : 1_000;
    const statusCode = busy ? HttpStatus.CONFLICT : HttpStatus.SERVICE_UNAVAILABLE;
    httpAdapter.setHeader(res, 'Retry-After', String(Math.max(1, Math.ceil(retryAfter / 1_000))));
    httpAdapter.setHeader(res, 'Cache-Control', 'no-store');
    const body: LockErrorBody = {
      statusCode,
      error: busy ? 'Conflict' : 'Service Unavailable',
      message: busy
        ? `${err.resource} is being changed by another request; retry after ${retryAfter} ms`
        : err instanceof LockLostError
          ? `${err.resource} lost its lock during the change; retry`
          : `locks are unavailable (Redis is down); nothing was changed, retry later`,
      retryAfter,
    };
    httpAdapter.reply(res, body, statusCode);
  }
}
