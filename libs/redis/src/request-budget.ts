import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request-scoped Redis budget: one Redis wait per request. Every HTTP request (entered from the HTTP
 * adapter's request hook, see request-budget.http.ts) runs in a scope kept in an `AsyncLocalStorage`.
 * When a command sent in that scope times out or loses its connection, the scope is spent: every later
 * command of the same request is refused at admission with `RedisUnavailableError` (reason
 * `request-budget`), in well under a millisecond, and the libs fall back as they do for an open breaker.
 * Work outside a scope (health PINGs, timers started at boot, queue workers) is not affected.
 */

/** Why a scope was spent: the command outcome that spent it. */
export type RedisBudgetSpentBy = 'timeout' | 'connection-lost' | 'disconnected';

/** One request's budget. @internal */
export interface RedisBudgetScope {
  /** A command of this scope timed out or lost its connection: refuse the rest. */
  spent: boolean;
  spentBy?: RedisBudgetSpentBy;
  /** The request ended (or `runWithRedisBudget`'s function settled): work it left behind is not limited. */
  closed: boolean;
  /**
   * One per connection that has had a command of this scope in flight: ends that connection's commands of
   * the scope still waiting when the scope is spent (a request waits for Redis once, also when a later
   * command was sent before the first one timed out).
   */
  cutters?: Array<(scope: RedisBudgetScope) => void>;
}

const storage = new AsyncLocalStorage<RedisBudgetScope>();

/** The scope of the current async context, unless there is none or it has closed. @internal */
export function activeBudget(): RedisBudgetScope | undefined {
  const scope = storage.getStore();
  return scope === undefined || scope.closed ? undefined : scope;
}

/** Mark `scope` spent (first cause wins). @internal */
export function spendBudget(scope: RedisBudgetScope | undefined, by: RedisBudgetSpentBy): void {
  if (scope === undefined || scope.spent || scope.closed) return;
  scope.spent = true;
  scope.spentBy = by;
  const cutters = scope.cutters;
  if (cutters === undefined) return;
  scope.cutters = undefined;
  for (const cut of cutters) cut(scope);
}

/** Register `cut` to run when `scope` is spent (once per connection hook). @internal */
export function onBudgetSpent(scope: RedisBudgetScope, cut: (scope: RedisBudgetScope) => void): void {
  const cutters = scope.cutters;
  if (cutters === undefined) scope.cutters = [cut];
  else if (!cutters.includes(cut)) cutters.push(cut);
}

/**
 * Run `next` in a new scope and return the scope, so the caller closes it when the request ends.
 * @internal used by the HTTP request hook
 */
export function enterBudgetScope(next: () => unknown): RedisBudgetScope {
  const scope: RedisBudgetScope = { spent: false, closed: false };
  storage.run(scope, next);
  return scope;
}

/**
 * Whether the current request (or {@link runWithRedisBudget} scope) has already had a Redis command time out
 * or lose its connection, so further commands in it are refused with `RedisUnavailableError`
 * (`reason: 'request-budget'`). False outside a scope. Libs may use it to skip optional Redis work.
 * @example
 * if (!isRedisBudgetSpent()) await this.recordVisit(id);
 */
export function isRedisBudgetSpent(): boolean {
  return activeBudget()?.spent === true;
}

/**
 * Run `fn` in its own Redis budget scope, as every HTTP request is: once one Redis command in it times out
 * or loses its connection, later commands in it are refused at once (`RedisUnavailableError`, reason
 * `request-budget`) instead of each waiting `commandTimeout`. For units of work that are not HTTP requests:
 * a WebSocket message, a job, a CLI command. The scope closes when `fn` returns, or when the promise it
 * returns settles.
 * @returns what `fn` returns
 * @example
 * \@SubscribeMessage('move')
 * move(@MessageBody() body: Move) {
 *   return runWithRedisBudget(() => this.boards.move(body));
 * }
 */
export function runWithRedisBudget<T>(fn: () => T): T {
  const scope: RedisBudgetScope = { spent: false, closed: false };
  const close = (): void => {
    scope.closed = true;
  };
  let result: T;
  try {
    result = storage.run(scope, fn);
  } catch (err) {
    close();
    throw err;
  }
  const thenable = result as { then?: unknown };
  if (thenable !== null && typeof thenable === 'object' && typeof thenable.then === 'function') {
    (result as PromiseLike<unknown>).then(close, close);
  } else {
    close();
  }
  return result;
}
