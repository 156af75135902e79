export { SessionModule } from './session.module';
export { SessionService } from './session.service';
export { SessionMiddleware } from './session.middleware';
export { AuthenticatedGuard } from './authenticated.guard';
export { SessionExceptionFilter } from './session-exception.filter';
export { Authenticated, Session, CurrentUser } from './session.decorators';
export {
  SessionConfigError,
  SessionUnavailableError,
  SessionNotFoundError,
  SessionValueTooLargeError,
  type SessionUnavailableBody,
} from './session.errors';
export { SESSION_ENV_VARS } from './session.config';
export type {
  SessionModuleOptions,
  SessionCookieOptions,
  SessionCsrfOptions,
  SessionValue,
  SessionData,
  SessionRecord,
  SessionSummary,
  CreatedSession,
  CreateSessionInput,
  SessionHandle,
  SessionRevokedEvent,
  SessionRejectReason,
  SessionUser,
  RequestSessionState,
} from './session.interfaces';
