import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { ATTR_CODE_FUNCTION_NAME } from '@opentelemetry/semantic-conventions';
import { catchError, throwError, type Observable } from 'rxjs';
import { requestStateOf, routeTemplateOf } from './request-state';
import { isReportable, SentryReporter } from './sentry-reporter';
import { recordError } from './tracing.service';

/**
 * The Nest-level part of request observation (registered globally by `MetricsModule`): names the handler
 * on the request span, and reports what the handler chain throws — recorded on the span, and sent to
 * Sentry when it is a server error (see `isReportable`) — before Nest's exception filters answer it.
 */
@Injectable()
export class ObservabilityInterceptor implements NestInterceptor {
  constructor(private readonly sentry: SentryReporter) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const kind = ctx.getType<string>();
    const request: unknown = kind === 'http' ? ctx.switchToHttp().getRequest() : undefined;
    const state = request === undefined ? undefined : requestStateOf(request);
    if (state) {
      state.handler = `${ctx.getClass().name}.${ctx.getHandler().name}`;
      state.route ??= routeTemplateOf(request);
      state.span?.setAttribute(ATTR_CODE_FUNCTION_NAME, state.handler);
    }
    if (!state?.span && !this.sentry.enabled) return next.handle();
    return next.handle().pipe(
      catchError((err: unknown) => {
        if (isReportable(err)) {
          if (state?.span) {
            recordError(state.span, err);
            state.errorRecorded = true;
          }
          this.sentry.captureException(err, state, kind);
        }
        return throwError(() => err);
      }),
    );
  }
}
