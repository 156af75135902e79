import { ArgumentsHost, Catch, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { JobQueueUnavailableError } from '@redwing/job-queue';

/** `JobQueueUnavailableError` → 503 with `Retry-After` (the enqueue failed closed; nothing was dropped silently). */
@Catch(JobQueueUnavailableError)
export class JobQueueUnavailableFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(err: JobQueueUnavailableError, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const response = host.switchToHttp().getResponse<unknown>();
    httpAdapter.setHeader(response, 'Retry-After', String(err.retryAfter));
    httpAdapter.reply(
      response,
      {
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message: `The job queue is unavailable; retry in ${err.retryAfter} s.`,
        retryAfter: err.retryAfter,
      },
      HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}
