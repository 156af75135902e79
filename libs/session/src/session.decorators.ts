import { applyDecorators, createParamDecorator, UseGuards, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthenticatedGuard, requestState } from './authenticated.guard';
import type { SessionRecord, SessionUser } from './session.interfaces';

/** @internal Metadata of `@Authenticated()`. */
export const AUTHENTICATED_METADATA = Reflector.createDecorator<boolean>();

/**
 * Require a logged-in session (one with a user) on a route or every route of a controller: 401 JSON without
 * one, 503 with `Retry-After` while the session store is unavailable (an outage is never a logout).
 * @example
 * \@Get('me')
 * \@Authenticated()
 * me(\@CurrentUser() user: SessionUser) { return user; }
 */
export function Authenticated(): MethodDecorator & ClassDecorator {
  return applyDecorators(AUTHENTICATED_METADATA(true), UseGuards(AuthenticatedGuard));
}

/**
 * The request's session (`SessionRecord`), or `null` when it has none. Throws `SessionUnavailableError`
 * (503) while the store is unavailable.
 * @example
 * \@Get('cart')
 * cart(\@Session() session: SessionRecord | null) { return session?.data.cart ?? []; }
 */
export const Session = createParamDecorator((_: unknown, ctx: ExecutionContext): SessionRecord | null => {
  const state = requestState(ctx);
  if (state.status === 'unavailable') throw state.error!;
  return state.session ?? null;
});

/**
 * The logged-in user (`{ id }`) of the request's session, or `null`. Throws `SessionUnavailableError` (503)
 * while the store is unavailable.
 * @example
 * \@Get('me')
 * \@Authenticated()
 * me(\@CurrentUser() user: SessionUser) { return { id: user.id }; }
 */
export const CurrentUser = createParamDecorator((_: unknown, ctx: ExecutionContext): SessionUser | null => {
  const state = requestState(ctx);
  if (state.status === 'unavailable') throw state.error!;
  const userId = state.session?.userId;
  return userId === undefined || userId === null ? null : { id: userId };
});
