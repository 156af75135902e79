import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { SessionUnavailableError } from './session.errors';

/**
 * Answers `SessionUnavailableError` with 503, its JSON body and `Retry-After` (seconds). `SessionModule`
 * registers it globally; it catches nothing else.
 */
@Catch(SessionUnavailableError)
export class SessionExceptionFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: SessionUnavailableError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const adapter = this.adapterHost.httpAdapter;
    const res = host.switchToHttp().getResponse<unknown>();
    const body = error.getResponse() as { retryAfter: number };
    adapter.setHeader(res, 'Retry-After', String(body.retryAfter));
    adapter.reply(res, body, error.getStatus());
  }
}
