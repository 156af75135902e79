/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` every `intervalMs` (default 20 ms) until it returns a value other than undefined/false,
 * and resolves to that value; rejects once `timeoutMs` has passed. A probe that throws counts as "not
 * yet"; its last error and `details()` (e.g. a log tail) are included in the timeout error. The one
 * polling helper of the repo's tests: libs and the gateway import it from `test/harness`.
 *
 * @example
 *   await waitFor('health up', 5_000, () => client.getHealth().status === 'up');
 *   const span = await waitFor('the server span', 3_000, () => store.all().find(isServer));
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { intervalMs?: number; details?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(opts.intervalMs ?? 20, Math.max(0, deadline - Date.now())));
  }
  const parts = [`Timed out after ${timeoutMs} ms waiting for ${what}`];
  if (lastError !== undefined) {
    parts.push(`last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }
  const extra = opts.details?.();
  if (extra) parts.push(extra);
  throw new Error(parts.join('\n'));
}

/** Rejects with `message` if `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves true if `promise` settles within `ms`, false otherwise (the timer is cleared either way). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
