/** A request hook of Nest's HTTP adapters (`setOnRequestHook`): call `done` (with an error to fail the request). */
export type AdapterRequestHook = (request: unknown, reply: unknown, done: (err?: unknown) => void) => unknown;

/** The parts of Nest's HTTP adapters (Express and Fastify) used here. */
interface HookableAdapter {
  setOnRequestHook?: (hook: AdapterRequestHook) => void;
  onRequestHook?: AdapterRequestHook;
}

/** Whether `adapter` (an `HttpAdapterHost.httpAdapter`) has a request hook (Nest 11.1.4+ Express, Fastify). */
export function hasRequestHook(adapter: unknown): boolean {
  return typeof (adapter as HookableAdapter | undefined)?.setOnRequestHook === 'function';
}

/**
 * Add `hook` to the adapter's one request hook, keeping the hooks installed before it (the Redis request
 * budget, HTTP metrics, sessions all use it). `first`: `hook` runs before them, and its `done` runs them (so
 * they run inside whatever context `hook` calls `done` in). `last`: `hook` runs after them, when they call
 * `done` — inside their contexts — and an error they pass skips it. Returns false when the adapter has no
 * request hook.
 */
export function chainRequestHook(
  adapter: unknown,
  hook: AdapterRequestHook,
  placement: 'first' | 'last',
): boolean {
  if (!hasRequestHook(adapter)) return false;
  const hookable = adapter as HookableAdapter;
  const previous = hookable.onRequestHook;
  if (placement === 'first') {
    hookable.setOnRequestHook!((request, reply, done) =>
      hook(request, reply, previous ? () => previous.call(hookable, request, reply, done) : () => done()),
    );
  } else {
    hookable.setOnRequestHook!((request, reply, done) => {
      const run = (err?: unknown) => (err ? done(err) : hook(request, reply, done));
      return previous ? previous.call(hookable, request, reply, run) : run();
    });
  }
  return true;
}
