import { Reflector } from '@nestjs/core';
import type { UsingOptions, WithLockOptions } from './lock.interfaces';

/**
 * Runs a provider method under a distributed lock (through `LockService.using()`: automatic extension,
 * release when the method settles). The resource is a template over the method's arguments — `{0}` the first
 * argument, `{1.id}` a property of the second — checked at start-up against the method's parameters. Inside,
 * `LockService.current()` gives the lock (its `fence`) and the signal that aborts if the lease is lost.
 * Sets metadata only; `LockModule` wraps singleton provider methods at start-up (not controller routes:
 * call a decorated service from the route).
 * @example
 * ```ts
 * @WithLock('order:{0}', { ttl: 10_000, wait: 2_000 })
 * async ship(orderId: string): Promise<void> {
 *   const { lock } = this.locks.current()!;
 *   await this.orders.markShipped(orderId, { fence: lock.fence });
 * }
 * ```
 */
export function WithLock(resource: string, options: UsingOptions = {}): MethodDecorator {
  return WITH_LOCK_METADATA({ ...options, resource });
}

/** @internal metadata of {@link WithLock}, read by the method explorer. */
export const WITH_LOCK_METADATA = Reflector.createDecorator<WithLockOptions>({
  key: 'redwing:lock:with-lock',
});
